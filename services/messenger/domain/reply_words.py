"""The words replies are understood by: normalisation, and the vocabulary of each intent and
barrier (English and Spanish, with the usual typos), which the model weighs as features.
Patterns work on ``normalise``d text."""

from __future__ import annotations

import re
from functools import lru_cache

from services.messenger.domain.linter import fold
from shared.events.messages import Barrier

_EMOJI = {
    "🩸": " blood ",
    "🤒": " fever ",
    "🤕": " hurt ",
    "🚑": " emergency ",
    "📅": " book ",
    "🗓": " book ",
    "🛑": " stop ",
    "👍": " ok ",
    "👌": " ok ",
    "🙏": " thanks ",
    "⏳": " later ",
    "\u20e3": "",
    "\ufe0f": "",
}
_EMOJI_RE = re.compile("|".join(map(re.escape, _EMOJI)))
_OTHER_SYMBOLS = re.compile(r"[^\w\s?#/'.,!%$-]")


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Folded text: lower case, no accents, emoji as words, repeated letters squeezed."""
    text = _EMOJI_RE.sub(lambda m: _EMOJI[m.group(0)], text)
    text = re.sub(r"\s*\n+\s*", " . ", text.strip())  # a new line ends a clause
    text = re.sub(r"\s+[-\u2013\u2014]+\s+|[\u2013\u2014]", " - ", text)  # so does a dash
    text = fold(text).replace("\u2019", "'")
    text = _OTHER_SYMBOLS.sub(" ", text)
    text = re.sub(r"([a-z])\1{2,}", r"\1\1", text)  # "sooooo" -> "soo"
    return re.sub(r"\s+", " ", text).strip()


def rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts))


# --- intents -----------------------------------------------------------------------------

# fmt: off
WRONG_NUMBER = rx(
    r"wrong (?:number|person|#|no\b|num)", r"^who(?: is|'s|s) this\W*$", r"who dis\b",
    r"\bi don'?t know (?:any|anyone|a|an|who)\b", r"\bdont know (?:any|anyone|who)\b",
    r"\b(?:isn'?t|is not|no longer|not)\s+\w+(?:'s)?\s+(?:phone|number|cell)",
    r"(?:number|phone) (?:belongs|is) (?:to )?someone else", r"i'?m not (?:a|the|your) patient",
    r"numero equivocado", r"equivoc\w* de numero",
    r"no soy (?:esa|la|el|su) (?:persona|paciente)",
    r"ya no es (?:el )?(?:numero|telefono|celular) de", r"^\W*quien (?:es|habla)\W*$",
    r"no (?:vive|hay|existe) nadie", r"\b(?:nobody|no one|noone) (?:here|by that|named|lives)",
    r"no conozco a", r"don'?t know (?:this|that|the) (?:person|name|lady|guy)",
    r"(?:you(?:'ve)?|you have) (?:got )?the wrong", r"wrong (?:guy|girl|lady|man|woman)",
    r"not the right (?:number|person)", r"equivocaron de (?:persona|numero)",
)
# fmt: on
# fmt: off
NO_LONGER_NEEDED = rx(
    r"\balready\b.{0,30}\b(?:book\w*|schedul\w*|appt|appointment|calendar|went|seen|saw|had|"
    r"done|have an|made|got)", r"\b(?:appointment|appt)\b.{0,20}\balready\b",
    r"\b(?:called|phoned) and (?:booked|scheduled)",
    r"\b(?:saw|see|seeing|go to|going to|switched to|moved to)\s+(?:an?\s+)?"
    r"(?:another|different|other)\s+(?:dermatologist|derm|doctor|dr|office|practice|clinic|provider)",
    r"switched (?:practices|doctors|offices|dermatologists)", r"\b(?:we|i) moved\b",
    r"\bmoved (?:to|away|out)\b",
    r"cleared up|went away|all healed|healed up|it'?s gone|resolved",
    r"\bdon'?t need it\b|\bno longer need|\bdont need it\b", r"somewhere else|elsewhere",
    r"handles? (?:this|that|it)\b",
    r"\bya (?:hice|tengo|fui|me atendieron|lo resolvi|no lo necesito|no la necesito|se me quito|"
    r"me vio|saque|agende)", r"\b(?:otro|otra) (?:dermatologo|doctor|doctora|medico|clinica|"
    r"consultorio)\b", r"\bme mude\b",
    r"taken care of|took care of (?:it|that)|got it (?:done|handled|fixed)|\ball set\b",
    r"(?:different|another|new|other)\s+(?:derm|dermatologist|doctor|provider|practice|office|"
    r"clinic)\b", r"\b(?:derm|dermatologist|doctor)\s+(?:closer|nearer|near)\b",
    r"closer to (?:home|work)", r"en otr[oa] (?:lado|parte|lugar|clinica)",
    r"ya me (?:la|lo) (?:quitaron|hicieron)", r"ya me (?:atendi|vieron)", r"ya no hace falta",
    r"ya esta resuelto", r"not in the area|no longer (?:live|in)|moved out of",
    r"ya tengo (?:dermatologo|doctor|medico)", r"\bya no vivo\b",
)
# fmt: on
# fmt: off
CLINICAL = rx(
    r"\bnormal\b", r"should i (?:keep|stop|use|change|still)",
    r"\bis (?:it|that|this) (?:ok|okay|normal|safe|expected)\b", r"\bexpected\b", r"\bresults?\b",
    r"resultados?", r"\bcream\b", r"\bcrema\b", r"\bointment", r"pomada", r"medicine",
    r"medicina", r"medication", r"medicamento", r"\bpills?\b", r"pastillas?", r"\bdoses?\b",
    r"\bdosis\b", r"side effects?", r"efectos", r"\bitch\w*", r"\bpica\b", r"picazon", r"comezon",
    r"\bdry\b", r"resec[oa]", r"peeling", r"\brash\b", r"\bscar\b", r"cicatriz", r"stitches",
    r"\bpuntos\b", r"bandage", r"\bvenda\b", r"\bscab\b", r"costra", r"sunscreen",
    r"protector solar", r"makeup", r"maquillaje", r"swimming", r"banarme", r"breaking out",
    r"breakouts?", r"granitos", r"hair (?:is )?(?:still )?falling", r"cayendo el pelo",
    r"didn'?t work", r"no (?:me )?funciono", r"isn'?t helping|not helping", r"\bworried\b",
    r"preocupad\w*", r"\bheal\b", r"\bsore\b", r"\bredness\b", r"\broj[oa]\b", r"safe to",
    r"tretinoin", r"shampoo", r"\balcohol\b", r"breastfeeding", r"lactancia", r"embarazada",
    r"pregnan\w*", r"\bflaky\b", r"\bspot\b", r"treated area", r"congelaron", r"\bfroze\b",
    r"\bburn\w*", r"\bsting\w*", r"\bardor\b", r"\barde\b", r"\bquema\w*",
    r"(?:can|may|should) i (?:exercise|work ?out|shower|bathe|drink|wear|use|apply|put|wash|"
    r"swim|fly|shave|get it wet|go in the sun)", r"puedo (?:hacer|usar|tomar|ponerme|banarme|"
    r"ducharme|lavar|maquillarme|mojar)", r"sigo igual|sigue igual|no mejor\w*|no veo mejoria",
    r"no improvement|hasn'?t improved|not improving|same as before",
)
# fmt: on
# fmt: off
POSTPONE = rx(
    r"\blater\b(?! (?:in|this|that) (?:the )?(?:week|day|afternoon|morning))",
    r"not (?:right )?now", r"not yet", r"not this (?:week|month)", r"remind me", r"ask me again",
    r"check back", r"try me", r"\bbusy\b", r"travel\w*", r"vacation", r"out of town",
    r"can'?t this (?:month|week)", r"when i get paid", r"waiting for", r"in the middle of",
    r"\bmaybe in\b", r"\bnow'?s not\b", r"mas tarde", r"despues de", r"despues le", r"ahorita no",
    r"ahora no", r"recuerd\w*", r"de viaje", r"mejor en", r"cuando regrese", r"le aviso",
    r"tal vez", r"en unos", r"ping me", r"text me (?:again|back|later|in|after|next)",
    r"get back to (?:me|you)", r"reach out (?:in|after|later|again)",
    r"(?:another|some other|a different) time", r"otr[oa] (?:semana|dia|momento|mes|vez)",
    r"mas adelante", r"\bluego\b", r"cuando me paguen", r"when i get (?:paid|back|home)",
    r"swamped|slammed|hectic",
)
# fmt: on
# fmt: off
DECLINE = rx(
    r"^\W*no\W*$", r"^no thanks", r"no thank", r"not interested", r"\bnope\b", r"i'?ll pass",
    r"^\W*pass\W*$", r"don'?t want to (?:come|book|schedule|go)", r"don'?t schedule",
    r"not coming back", r"\bno way\b", r"can'?t afford", r"not worth", r"don'?t think i need",
    r"skip it", r"cancel (?:my|the) (?:appointment|appt)", r"no gracias", r"no me interesa",
    r"^\W*no quiero", r"no vuelvo", r"no creo que lo necesite", r"^\W*paso\W*$",
    r"no puedo pagar", r"too expensive", r"^no\b", r"\bso no\W*$", r"not at this time",
    r"too (?:pricey|costly|much money)", r"costs? too much", r"out of my budget",
    r"(?:muy|demasiado) car[oa]", r"no,? thanks?\b", r"no por ahora", r"not for me",
    r"can'?t pay", r"\bno gracias\b",
)
# fmt: on
# fmt: off
BOOK = rx(
    r"\bbo+k\w*", r"\bbok\b", r"schedul\w*", r"scheduel", r"shedul\w*",
    r"(?:make|book|schedule|get|want|need|like|set up)\s+(?:an?|my|the)?\s*"
    r"(?:appointment|appt|apointment|visit)", r"\bset (?:it |me |that |this )?up\b", r"come in\b",
    r"get in\b", r"reschedul\w*", r"next available", r"earliest", r"what times",
    r"any (?:times|openings)", r"availability", r"\bavailable\b",
    r"anything (?:on |this |next )?(?:mon|tue|wed|thu|fri|sat|sun)", r"\bcan come\b",
    r"\bi can do\b", r"^\W*cita\W*$", r"(?:una|mi|dar|darme|hacer|sacar|agendar|programar|"
    r"reservar) cita", r"cita (?:por favor|con)", r"\bagend\w*", r"\breserv\w*", r"\bprogram\w*",
    r"reprogram\w*", r"horarios", r"quiero ir", r"none of (?:those|these|them)",
    r"^\W*(?:yes|yeah|yea|ya|yah|yep|yup|sure|si|claro|of course|absolutely|definitely)\b",
    r"(?:fit|squeeze|get|put) me (?:in|on)\b", r"let'?s do (?:it|that|this)\b",
    r"\bi'?m interested\b|\bme interesa\b", r"count me in", r"put me (?:down|in)\b",
    r"sign me up",
)
# fmt: on
# fmt: off
QUESTION = rx(
    r"how much", r"\bcost\b", r"\bprice", r"co-?pay", r"insurance", r"aetna|cigna|humana",
    r"medicare", r"medicaid", r"covered", r"installments", r"\bfee\b", r"deductible",
    r"\bpark(?:ing)?\b", r"address", r"\bwhere\b", r"location", r"\bhours\b", r"\bopen\b",
    r"referral", r"\bbring\b", r"how long", r"records", r"telehealth", r"virtual", r"video",
    r"still there", r"who is my", r"which (?:location|office|doctor)",
    r"cuanto (?:cuesta|cobran|sale|dura)", r"\bcosto\b", r"\bprecio\b", r"\bseguro\b", r"aceptan",
    r"\bpagar\b", r"estacionamiento", r"\bdonde\b", r"ubicad\w*", r"direccion", r"hora abren",
    r"horario de", r"referencia", r"llevar", r"hablan", r"\bdura\b",
)
# fmt: on

# fmt: off
POOR_EXPERIENCE = rx(
    r"\brude\b", r"terrible", r"\bwaited\b", r"didn'?t listen", r"bad experience",
    r"unprofessional", r"trataron mal", r"groser\w*", r"mala experiencia", r"espere",
    r"waited \d", r"\d+ hours", r"no me escuch\w*",
)
# fmt: on
# fmt: off
COST = rx(
    r"\bcost\w*", r"afford", r"expensive", r"\bprice", r"money", r"co-?pay", r"insurance",
    r"deductible", r"covered by|cover (?:it|this|that|the)|doesn'?t cover", r"\bpaid\b",
    r"\bpay\b", r"\bcaro\b", r"dinero", r"pagar", r"\bseguro\b", r"\bprecio\b", r"cuanto cuesta",
    r"medicaid", r"medicare", r"aetna", r"installments", r"\bfee\b", r"pricey", r"can'?t pay",
    r"budget", r"presupuesto", r"paycheck", r"payday", r"\bpague\w*",
)
# fmt: on
# fmt: off
UNRESOLVED = rx(
    r"still (?:breaking|falling|itch|flak|the same|not|no better|getting|having|have)",
    r"still there after", r"didn'?t work", r"not working", r"isn'?t helping|not helping",
    r"no (?:me )?funciono", r"no ayuda", r"sigo con", r"se me sigue", r"sigue igual",
    r"sigo igual", r"no mejora", r"not better", r"no better", r"worse than",
)
# fmt: on
# fmt: off
UNCERTAINTY = rx(
    r"not sure", r"not worth", r"don'?t think i need", r"necessary", r"no se si",
    r"no creo que lo necesite", r"vale la pena",
)
# fmt: on
# fmt: off
TIMING = rx(
    r"\bbusy\b", r"\bwork\b", r"\bjob\b", r"travel\w*", r"vacation", r"out of town",
    r"\bmov(?:e|ing)\b", r"\bexams?\b", r"no time", r"good time", r"reschedul\w*",
    r"none of (?:those|these)", r"trabajo", r"de viaje", r"ocupad\w*", r"no tengo tiempo",
    r"reprogram\w*", r"mudanza", r"cuando regrese", r"when i get back", r"swamped", r"slammed",
    r"hectic", r"out of (?:the )?(?:country|town)",
)
# fmt: on
BARRIERS: tuple[tuple[Barrier, re.Pattern[str]], ...] = (
    (Barrier.poor_experience, POOR_EXPERIENCE),
    (Barrier.cost, COST),
    (Barrier.unresolved_concern, UNRESOLVED),
    (Barrier.uncertainty, UNCERTAINTY),
    (Barrier.timing, TIMING),
)

# The intent vocabulary of the first, rule-based classifier: now features the model weighs.
INTENT_WORDS: dict[str, re.Pattern[str]] = {
    "book": BOOK,
    "later": POSTPONE,
    "decline": DECLINE,
    "no longer needed": NO_LONGER_NEEDED,
    "wrong number": WRONG_NUMBER,
    "question": QUESTION,
    "clinical": CLINICAL,
}
