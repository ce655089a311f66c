"""The words of consent: the verbs that revoke, what they may be about, and whole phrases that
revoke ("lose my number") or opt back in ("put me back on the texts"). English and Spanish, on
``normalise``d text. ``consent`` decides how each use of a verb is meant.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.!?,;:()]|(?<![a-z0-9])-(?![a-z0-9])")
PUNCT = frozenset(".!?,;:()-")

VERBS = frozenset(
    {
        "stop", "stopall", "quit", "end", "cancel", "revoke", "optout", "parar", "pare", "paren",
        "detener", "detengan", "para", "cancelar", "cancelen", "cancela", "alto", "basta", "baja",
        "cease", "discontinue", "parenle", "parale",
    }
)  # fmt: skip
ALIASES = {
    "stoop": "stop", "stopp": "stop", "stahp": "stop", "stopit": "stop", "sotp": "stop",
    "stpo": "stop", "tsop": "stop",
}  # fmt: skip
# Too common in other senses inside a sentence: a command only as a clause of their own.
BARE_ONLY = frozenset({"alto", "pare", "para", "baja"})
# Words about messages: the object (or subject) that makes any of the verbs a revocation.
MESSAGING = frozenset(
    {
        "text", "texts", "texting", "texted", "txt", "txts", "txting", "message", "messages",
        "messaging", "msg", "msgs", "sms", "email", "emails", "emailing", "mail", "mails",
        "contact", "contacting", "call", "calls", "calling", "reminder", "reminders",
        "reminding", "notification", "notifications", "spam", "spamming", "bothering", "bugging",
        "harassing", "pestering", "hounding", "nagging", "sending", "writing", "asking", "pinging",
        "subscription", "subscriptions", "alerts", "alert", "outreach", "list", "mailing",
        "consent", "permission", "authorization", "mensajes", "mensaje", "textos", "correos",
        "correo", "recordatorios", "llamadas", "escribir", "escribirme", "mandar", "mandarme",
        "enviar", "enviarme", "molestar", "molestarme", "contactarme", "llamarme", "whatsapp",
        "consentimiento", "permiso", "escribiendo", "mandando", "enviando", "communication",
        "communications", "comunicacion", "comunicaciones", "suscripcion", "suscripciones",
    }
)  # fmt: skip
# Pronouns that leave the verb undirected ("stop it", "end this", "cancel everything").
UNDIRECTED = frozenset(
    {"it", "this", "that", "these", "those", "them", "all", "everything", "todo", "esto", "eso"}
)
# Words after the verb that leave it undirected (it still revokes).
FILLER = frozenset(
    {
        "please", "pls", "plz", "now", "already", "asap", "immediately", "right", "ok", "okay",
        "thanks", "thank", "thx", "ty", "for", "good", "forever", "permanently", "again", "me",
        "por", "favor", "ya", "ahora", "mismo", "gracias", "you", "u", "ya'll", "yall", "guys",
        "lol", "wtf", "seriously", "dude", "y", "ahorita", "omg", "jeez", "damn", "and", "i",
        "im", "i'm", "i've", "ive", "we", "but", "or", "so", "because", "cause", "cuz", "porfa",
        "this", "that", "it", "its", "it's", "is", "no", "not", "just", "stop", "quit", "end",
        "cancel", "unsubscribe", "unsub", "yes", "si", "hey", "hi", "hello", "sir", "maam",
        "ma'am", "lady", "man", "people", "with", "de", "a", "los", "las", "el", "la", "how",
        "what", "when", "where", "who", "why", "can", "do", "does", "are", "will", "my", "your",
    }
)  # fmt: skip
DETERMINERS = frozenset(
    {
        "the", "my", "your", "ur", "these", "those", "this", "that", "a", "an", "all", "of",
        "his", "her", "our", "el", "la", "los", "las", "mi", "mis", "su", "sus", "un", "una",
        "with", "using", "taking", "applying", "doing", "on",
    }
)  # fmt: skip
NEGATIONS = frozenset(
    {
        "don't", "dont", "not", "never", "didn't", "didnt", "won't", "wont", "can't",
        "cant", "doesn't", "doesnt", "wouldn't", "wouldnt", "shouldn't", "shouldnt", "haven't",
        "hasn't", "isn't", "nunca", "jamas", "without", "sin",
    }
)  # fmt: skip
SPANISH_VERBS = frozenset({"parar", "pare", "paren", "detener", "detengan", "cancelen", "cancela"})
SELF_MODALS = frozenset(
    {
        "should", "can", "could", "do", "need", "have", "gonna", "going", "will", "may", "must",
        "might", "would", "to", "ok", "okay", "safe", "when", "if", "puedo", "debo", "tengo",
        "necesito", "hay",
    }
)  # fmt: skip
SELF = frozenset(
    {
        "i", "we", "im", "i'm", "yo", "puedo", "debo", "tengo", "necesito", "quiero", "podemos",
        "he", "she", "they", "el", "ella", "ellos", "puede", "debe",
    }
)  # fmt: skip
YOU = frozenset({"you", "u", "ya", "yall", "y'all", "ustedes", "guys"})
# Words allowed between a negation and the verb it negates ("don't ever stop").
BETWEEN_NEGATION = frozenset(
    {"ever", "just", "please", "pls", "you", "u", "to", "gonna", "really", "evr", "y'all", "yall"}
)
# Before "end", the words that make it a noun ("on one end", "at the far end"); anything else
# leaves it a possible request ("lets end this", "pls end it"), read as one when in doubt.
END_NOUN = frozenset(
    {"one", "far", "other", "each", "either", "both", "an", "at", "on", "in", "of", "by", "deep",
     "dead", "back", "front", "tail", "low", "high", "upper", "lower", "top", "bottom", "weeks",
     "months", "years", "week's", "month's", "year's"}
)  # fmt: skip
# After the verb, the use of a treatment: "stop taking it", "quit using the cream".
TREATMENT_USE = frozenset(
    {"taking", "using", "applying", "putting", "tomando", "usando", "aplicando", "poniendo"}
)
# Words for how we reach a patient: "stop using my number" is about contact, not a treatment.
CONTACT_DETAILS = frozenset(
    {"number", "#", "phone", "cell", "info", "information", "numero", "telefono", "celular", "time"}
)
SENSE_AFTER = frozenset({"by", "in", "at", "over", "up", "of", "ed", "result", "results"})

# Whole phrases that revoke without one of the verbs ("lose my number", "leave me alone").
# fmt: off
PHRASES = re.compile("|".join((
    r"\bopt(?:ing|ed)? (?:me |us |him |her )?out\b", r"\bopt-out\b",
    r"\bremove (?:me|us|her|him|them)\b", r"\bremove (?:my|this|our) (?:number|#|phone|cell|info|"
    r"information|name|e-?mail|contact)", r"\btake (?:me|my \w+|this number|us|her|him) "
    r"(?:off|out)\b", r"\b(?:delete|erase) (?:me|us|her|him)\b",
    r"\b(?:i'?d )?rather not (?:get|receive|have) (?:\w+ )?(?:texts?|messages?|e-?mails?|msgs?)",
    r"\bturn (?:these|the|your|it|them|this|those) (?:\w+ )?off\b", r"\bturn it off\b",
    r"\bturn off (?:the |these |your |all |my )?(?:\w+ )?(?:texts?|messages?|reminders?|"
    r"notifications?)\b",
    r"\b(?:can|could|would|will) (?:you|u|y'?all|yall|ya) (?:please |pls )?not (?:text|message|"
    r"contact|email|call|send)", r"\b(?:don'?t|do not|dont|no|never) send(?:ing)? (?:me |us |her "
    r"|him |this number )?(?:any ?more |more |any |these |further )?(?:messages?|texts?|msgs?|"
    r"reminders?|e-?mails?)", r"\b(?:want|wanna) (?:to be |to get )?off (?:this|your|ur|the) list",
    r"\boff (?:this|your|ur|the) list\b", r"\bno (?:more )?(?:texts?|txts?|messages?|msgs?|"
    r"e-?mails?|sms)(?: please| pls| plz| por favor| thanks| thank you|\W*$)",
    r"\b(?:won'?t|will not|don'?t|do not|dont) (?:be )?need(?:ing)? (?:these|your|the|any|more) "
    r"(?:texts?|messages?|reminders?|msgs?)",
    r"\b(?:delete|erase|lose|forget) (?:my|this|our) (?:number|info|information|contact|email|"
    r"phone|cell|name|details)\b", r"\blose (?:my|this) #",
    r"\b(?:don'?t|do not|dont|never|stop) (?:(?:you |u )?ever )?(?:text|txt|message|msg|contact|"
    r"email|e-mail|"
    r"sms|write|spam)\b(?! back\b)", r"\b(?:don'?t|do not|dont|never|stop) (?:ever )?bother"
    r"(?:ing)? (?:me|us|her|him)\b",
    r"\bnot (?:text|message|contact|email|msg) (?:me|us|her|him)\b",
    r"\bno more (?:texts?|txts?|messages?|msgs?|e-?mails?|reminders?|contact|sms|spam|of th)",
    r"\bleave (?:me|us) alone\b", r"\bleave me be\b",
    r"\boff (?:your|ur|the) (?:list|contact list|mailing list|texting list|system|calling list)\b",
    r"\b(?:i|we) (?:don'?t|do not|dont) want (?:any(?:more)?|these|your|more|the|to get|to receive|"
    r"to be) ?(?:\w+ )?(?:texts?|messages?|e-?mails?|reminders?|contacted|msgs?|txts?)\b",
    r"\b(?:sick|tired) of (?:these|your|the|all the|getting) (?:\w+ )?(?:texts?|messages?|"
    r"e-?mails?|reminders?|msgs?)", r"\benough (?:with )?(?:the|these|your) (?:texts?|messages?)",
    r"\bthis is (?:harassment|spam)\b", r"\bblock(?:ing|ed)? (?:you|this number|your number)\b",
    r"\b(?:stop|quit) (?:bothering|bugging|harassing|spamming|pestering|hounding)",
    r"\bdo not (?:contact|text|message|email)\b",
    r"\bmake (?:these|the|this|your|them|it) (?:\w+ )?(?:stop|end)\b",
    r"\b(?:un-?enroll|deregister|de-?enroll) me\b",
    r"\b(?:stop|quit) blowing up my (?:phone|cell)", r"\b(?:stop|quit) using (?:my|this|our) "
    r"(?:number|#|phone|cell)", r"\bdone with (?:these|the|your|all|ur) "
    r"(?:\w+ )?(?:texts?|messages?|msgs?|e-?mails?|reminders?)",
    r"\b(?:do not|don'?t|dont|no longer) consent\b", r"\bwithdraw\w* (?:my )?consent",
    r"\b(?:stop|quit) (?:getting|receiving) (?:these|those|them|this|the|your|any|texts?|"
    r"messages?|msgs?|e-?mails?|reminders?)",
    r"(?:^\W*|[.,!#]\s*|\b(?:pls|please|just|number|and) )remove(?: this(?: number| #| phone)?)?"
    r"(?: please| pls| now| asap)?\W*$",
    r"\b(?:delete|erase) (?:it|this|that)\b(?=.*\b(?:number|#|phone|cell|info)\b)|"
    r"\b(?:number|#|phone|cell)\b.*\b(?:delete|erase) (?:it|this|that)\b",
    # Spanish
    r"\bno (?:me |le |les |nos )(?:vuelvan a |vuelva a |sigan |)(?:escrib\w*|mand\w*|envi\w*|"
    r"contact\w*|llam\w*|text\w*|molest\w*)", r"\bno (?:vuelvan|vuelva|sigan) a (?:escrib|mand|"
    r"envi|contact|llam|text)\w*", r"\bno (?:manden|envien|escriban|mande|envie|mandar|enviar|"
    r"escribir) (?:mas )?(?:mensajes|textos|msj\w*|sms|correos|nada)",
    r"(?<!\bno )\bdej(?:en|e|a|ar) de (?:escrib\w*|mand\w*|envi\w*|text\w*|molest\w*|llam\w*|"
    r"contact\w*|llegar|insist\w*)", r"\bpara (?:que )?(?:ya )?no (?:me )?(?:recib\w*|lleg\w*)",
    r"\bya no (?:me |nos |le )?(?:escrib|mand|envi|text|contact|llam)\w*",
    r"\b(?:hart[oa]s?|cansad[oa]s?|fastidiad[oa]s?) (?:de|con) (?:\w+ ){0,2}(?:mensaje|texto|"
    r"correo|recordatorio|msj)\w*", r"\bya (?:estuvo|chole|basta|estuvo bueno) (?:\w+ )?(?:con|de) "
    r"(?:\w+ )?(?:mensaje|texto|correo|recordatorio|msj)\w*", r"\bno (?:me |le )?llegue\w*",
    r"\bcomo (?:me salgo|salgo|me quito|me doy de baja|me borro)",
    r"\bsalirme de (?:esto|la lista)",
    r"\b(?:saqueme|quiteme|borreme|elimineme|saquenos|quitenos)\b",
    r"\bno (?:escribirme|mandarme|enviarme|contactarme|llamarme|textearme|molestarme)\b",
    r"\b(?:ya )?no quiero (?:recibir |que me (?:manden|escriban|envien|contacten|llamen) |mas |"
    r"sus |estos |)(?:mas |)(?:mensajes|textos|correos|recordatorios|llamadas|msj\w*|sms)",
    r"\bno quiero que me (?:escrib|mand|envi|contact|llam|molest)\w*",
    r"\b(?:borr|quit|saqu|elimin|sac)\w* (?:me |mi |mis |de |este |ese |)(?:de |)(?:la |su |sus |)"
    r"(?:lista|numero|datos|contacto|correo|telefono|celular|email)",
    r"\b(?:borrenme|quitenme|saquenme|eliminenme)\b(?! (?:la|el|los|las) (?!lista))",
    r"\b(?:dar|den|de|darme|denme|deme|darse|darnos) de baja\b",
    r"(?<!estoy )(?<!estaba )(?<!dieron )(?<!dio )\bde baja\b(?! (?:por|del|de la|medic\w*|"
    r"laboral))",
    r"\bno (?:mas|quiero mas) (?:mensajes|textos|correos|recordatorios|msj\w*|sms)\b",
    r"\b(?:ya )?basta de (?:mensajes|textos|correos)\b", r"\bdejenme en paz\b",
    r"\bno me interesa recibir\b",
)))
# fmt: on
OPT_IN = re.compile(
    "|".join(
        (
            r"\b(?:start|resume|restart) (?:texting|messaging|sending|the texts|the messages|the "
            r"reminders|texts|messages|reminders)",
            r"\b(?:text|message|msg|txt) me again\b(?! (?:in|after|next|on|when|later|around|by|"
            r"once|at|la?ter))",
            r"\bre-?subscribe\b",
            r"\bsubscribe me\b",
            r"\bopt (?:me )?(?:back )?in\b",
            r"\bopt-in\b",
            r"\byou can (?:text|message|contact|email) me (?:again|now)\b",
            r"\b(?:quiero|deseo) (?:volver a )?recibir (?:los |sus )?(?:mensajes|textos|"
            r"recordatorios)",
            r"\b(?:pueden|puede) (?:volver a )?(?:escribirme|mandarme|enviarme|contactarme)\b",
            r"\bvuelvan a (?:escribirme|mandarme|enviarme)\b",
            r"\bput (?:me|her|him|us) back on\b",
            r"\bsign (?:me|her|him|us) (?:back )?up (?:again|for (?:the )?(?:texts?|reminders?|"
            r"messages?))|\bsign (?:me|her|him|us) back up\b",
            r"\bback on (?:the|your) (?:list|texts?|"
            r"reminders?|messages?)",
            r"\b(?:want|like|need)s? (?:my |her |his |the |those |these )?"
            r"(?:texts?|reminders?|messages?) back\b",
            r"\bkeep (?:texting|messaging|sending)\b",
            r"\bturn (?:the |my |them |it )?(?:texts?|reminders?|messages?)? ?back on\b",
            r"\b(?:vuelvan|vuelva) a (?:mandar|enviar|escribir)\w*",
            r"\bsi quiero (?:los |sus )?"
            r"(?:mensajes|recordatorios|textos)",
            r"\bquiero que me (?:vuelvan a )?(?:mandar|enviar|"
            r"escribir)\w*",
            r"\brecibir (?:los )?mensajes otra vez\b",
            r"\bstart\W*$",
        )
    )
)
# Said about a past opt-out, not a new one ("I texted stop by mistake").
MISTAKE = re.compile(
    r"\bby (?:mistake|accident)\b|\baccidental\w*|\bpor (?:error|equivocacion|accidente)\b|"
    r"\bsin querer\b|\bdidn'?t mean to\b|\bwasn'?t me\b|\bwithout asking\b|\bme equivoque\b|"
    r"\bgrabbed my phone\b|\bbutt ?dial|\bpocket ?dial"
)
MENTION = frozenset(
    {"texted", "sent", "replied", "typed", "wrote", "hit", "said", "answered", "put", "pressed",
     "puse", "mande", "escribi", "respondi", "conteste", "mandar", "al"}
)  # fmt: skip
# "had to cancel", "tengo que cancelar": the patient cancels something of theirs.
OWN_ACTION = frozenset(
    {"have", "had", "has", "need", "needed", "needs", "gonna", "going", "got", "want", "wanted",
     "tengo", "tuve", "necesito", "quiero", "voy", "vamos", "tendre", "hay", "que", "pueden",
     "puede", "podrian", "podria"}
)  # fmt: skip
CLITICS = frozenset({"la", "lo", "las", "los", "le"})
START_FIRST = re.compile(r"^\W*(?:start|unstop)\b(?!\s+(?:\w+ )?(?:on|at|in|with|the|my|a)\b)")
YES = re.compile(r"^\W*(?:yes+|yeah|yep|y|si|ok|okay|sure|claro)\W*(?:please|pls|por favor)?\W*$")
HELP = re.compile(
    r"^\W*(?:help|info|ayuda)\W*(?:please|pls|por favor|porfa|porfavor|me)?\W*$|"
    r"^\W*(?:help|info|ayuda)\s*[,.:!?]"
)
EMAIL = re.compile(r"\be-?mail\w*|\bcorreos?\b|\bmail\b|\binbox\b")
TEXT = re.compile(r"\btext\w*|\btxt\w*|\bsms\b|\bmsgs?\b|\bmessag\w*|\bmensaje\w*|\bphone\b")
EVERY = re.compile(
    r"\bstop ?all\b|\ball (?:messages|contact|communication)|\bany (?:contact|communication)|"
    r"\b(?:texts?|messages?) (?:and|or|&) (?:e-?mails?|calls?)\b|\be-?mails? (?:and|or|&) texts?\b|"
    r"\beverything\b|\bnothing at all\b|\bde ninguna forma\b"
)
