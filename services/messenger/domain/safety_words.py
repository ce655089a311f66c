"""The words of clinical safety: red flags by kind, what makes a mention negated or resolved, and
clinical (non-urgent) content. English and Spanish, on folded text whose misspellings of these
words were already corrected (``red_flags.canonical``). Recall matters more than precision: a
false alarm costs a call, a miss could cost far more.
"""

from __future__ import annotations

import re
from enum import StrEnum


class RedFlag(StrEnum):
    bleeding = "bleeding"
    wound_opened = "wound_opened"
    infection = "infection"
    severe_pain = "severe_pain"
    swelling = "swelling"
    allergic_reaction = "allergic_reaction"  # breathing, throat, hives, a spreading rash
    vision_change = "vision_change"
    drooping = "drooping"
    skin_colour_change = "skin_colour_change"  # white, grey, blue or dusky skin after filler
    burn_or_blister = "burn_or_blister"
    mood = "mood"  # low mood, dark thoughts, self-harm (isotretinoin)
    severe_headache = "severe_headache"
    stomach_pain = "stomach_pain"
    chest_pain_or_fainting = "chest_pain_or_fainting"
    changing_mole = "changing_mole"
    emergency = "emergency"
    other = "other"  # the model read urgency the words above do not name


def rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts))


_INTENSE = (
    r"(?:severe|severly|terrible|unbearable|excruciating|horrible|extreme|intense|worst|awful|"
    r"really bad|so bad|very bad|bad|sharp|killing|throbbing|agonizing|insane|crazy|"
    r"a lot of|so much|lots of|fuerte|intenso|severo|insoportable|terrible|horrible|mucho)"
)
_WORSE = r"(?:worse|worsening|getting bigger|spreading|peor|empeor\w*|mas grande|aumenta\w*)"
_FACE = (
    r"(?:face|lips?|lip's|tongue|eyes?|eyelids?|throat|mouth|cheeks?|nose|neck|cara|rostro|"
    r"labios?|lengua|ojos?|parpados?|garganta|boca|mejillas?|nariz|cuello)"
)

# fmt: off
FLAGS: dict[RedFlag, re.Pattern[str]] = {
    RedFlag.bleeding: rx(
        r"\bbleed\w*", r"\bbled\b", r"\bblood\w*", r"\bsangr\w*", r"\bhemorr?a\w*",
        r"\bbleading\b", r"🩸",
    ),
    RedFlag.wound_opened: rx(
        r"\breopen\w*",
        r"\b(?:stitch\w*|sutur\w*|wound|incision|cut|site|herida|puntos|costura|cicatriz)\b"
        r".{0,30}\b(?:open\w*|came (?:out|undone|apart|loose|off)|popped|split|broke|gap\w*|"
        r"pull\w* apart|tore|torn|ripped|abri\w*|separ\w*|solt\w*|revent\w*|falling apart)",
        r"\b(?:split|ripped|busted|broke|came|popped|burst) (?:\w+ )?open\b", r"\bdehisc\w*",
        r"\bse (?:me )?(?:abrio|abrieron|solto|soltaron|reviento)", r"\bopen wound\b",
        r"\bzaf\w*",
    ),
    RedFlag.infection: rx(
        r"\bpus\b", r"\bpussy\b", r"\booz\w*", r"\bdrain\w*", r"\binfect\w*", r"\binfecc\w*",
        r"\bstreak\w*", r"\b(?:warm|hot) (?:to the touch|to touch|and red)",
        r"\bred and (?:hot|warm)",
        r"\bredness\b.{0,25}\bspread\w*", r"\bspread\w* redness", r"\bfe+ve+r\w*", r"\bfiebre",
        r"\bchills\b", r"\bescalofrio\w*", r"\bcalentura", r"\bsupura\w*", r"\bfoul\b",
        r"\bsmell\w*", r"\bstinks?\b", r"\bmal olor", r"\bhuele (?:mal|feo)", r"\bdischarge\b",
        r"\bsecrecion\w*", r"\bpurulent", r"\btemp(?:erature)? (?:of |is |was )?1\d\d",
        r"\b10[0-4](?:\.\d)? ?(?:f\b|degrees)", r"\bpurulen\w*", r"\bfebril\b", r"\bcellulitis",
        r"\bcelulitis", r"\bgreen\w* (?:stuff|gunk|discharge)", r"\byellow\w* (?:stuff|gunk|"
        r"discharge|crust|liquid|fluid)", r"🤒", r"\bcaliente\b",
        r"\b(?:roj\w*|enrojec\w*)\b.{0,40}\bextend\w*", r"\bextend\w*\b.{0,25}\broj\w*",
        r"\bleak\w*", r"\bcloudy (?:fluid|liquid|stuff)", r"\bliquido (?:amarillo|verde|turbio|"
        r"blanco|con olor)", r"\b(?:sale|salia|sal[ei]endo|brota) (?:un |una )?(?:liquido|agua|"
        r"pus|materia)",
    ),
    RedFlag.severe_pain: rx(
        _INTENSE + r"\s+(?:\w+\s+){0,2}?(?:pain|hurt\w*|ache|aching|dolor\w*|ardor)",
        r"\b(?:pain|hurt\w*|dolor|duele)\b.{0,50}\b(?:so bad|unbearable|severe|excruciating|"
        r"terrible|horrible|worse|10/10|can'?t sleep|cant sleep|killing|insane|crazy|like hell|"
        r"a lot|so much|mucho|muchisimo|demasiado|horrible|insoportable|peor|no puedo dormir|"
        r"fuert\w*)", r"\b(?:[89]|10)/10\b", r"\bagony\b", r"\bthrobbing\b", r"killing me",
        r"can'?t (?:take|stand|bear) (?:it|the pain)", r"\bno (?:lo |la )?(?:soporto|aguanto)",
        r"\bmucho dolor", r"\bme duele (?:mucho|muchisimo|demasiado|horrible|un monton)",
        r"(?:worse|empeor\w*)\b.{0,20}\b(?:pain|dolor)", r"pain (?:meds|medicine|pills) "
        r"(?:are not|aren'?t|don'?t|not) (?:working|helping)", r"\bkilling\b",
    ),
    RedFlag.swelling: rx(
        r"\b(?:swell\w*|swollen|swolen|hinch\w*|inflam\w*|puff\w*|balloon\w*|blown up|blew up)\b"
        r".{0,40}\b" + _FACE, _FACE + r".{0,40}\b(?:swell\w*|swollen|hinch\w*|inflam\w*|puff\w*|"
        r"balloon\w*|blown up|blew up|huge|twice the size|doble)",
        r"\b(?:swell\w*|swollen|hinch\w*|inflam\w*)\b.{0,30}\b" + _WORSE,
        _WORSE + r".{0,30}\b(?:swell\w*|swollen|hinch\w*|inflam\w*)",
        r"\b(?:very|really|super|so|extremely|badly|huge|massive|muy|bien|super|demasiado) "
        r"(?:swollen|hinchad\w*|inflamad\w*|puffy)", r"\b(?:swelling|hinchazon) (?:is )?(?:huge|"
        r"massive|bad|a lot|severe|enorme|fuerte)", r"\bcan'?t open (?:my|the) eye",
    ),
    RedFlag.allergic_reaction: rx(
        r"\bhives\b", r"\bronchas\b", r"\burticaria",
        r"\banaphyla\w*", r"\bepi-?pen", r"\bwelts\b", r"\ballergic reaction",
        r"\b(?:am|i'?m|being|having|had|getting) (?:an? )?allergic", r"\bme dio alergia",
        r"\balergia (?:a |al |fuerte)", r"\bspreading (?:fast|quickly|everywhere)",
        r"\bthroat\b.{0,20}\b(?:tight\w*|clos\w*|swell\w*|swollen|narrow\w*)",
        r"\b(?:tight\w*|clos\w*) (?:\w+ )?throat",
        r"\b(?:can'?t|cant|cannot|could ?n'?t|hard to|trouble|difficult\w*|struggling to|"
        r"problems?|hard time) (?:\w+ )?(?:breath\w*|swallow\w*)", r"\bshort(?:ness)? of breath",
        r"\bbreathing\b.{0,20}\b(?:hard|weird|trouble|problem|difficult|funny|wheez|tight|"
        r"labou?red|short|issues)", r"\bwheez\w*", r"\bno puedo (?:respirar|tragar)",
        r"\b(?:me cuesta|dificultad (?:para|al)|problemas? para) (?:respirar|tragar)",
        r"\bfalta (?:de )?aire", r"\bme ahogo\b", r"\bahog\w*",
        r"\b(?:garganta|lengua)\b.{0,20}\b(?:cierr\w*|cerr\w*|hinch\w*|apret\w*|grues\w*)",
        r"\b(?:cierr\w*|cerr\w*|apret\w*) (?:\w+ )?garganta",
        r"\b(?:rash|hives|welts|bumps|sarpullido|ronchas|erupcion)\b.{0,80}\b(?:spread\w*|"
        r"all over|everywhere|por todo|extend\w*|growing)", r"\b(?:spread\w*|all over) "
        r"(?:\w+ )?(?:rash|hives|bumps)", r"\breaccion alergica", r"\bitch\w* all over",
        r"\bpica (?:todo|por todo)", r"\b(?:tongue|lips?) (?:\w+ )?(?:thick|tingl\w*|numb)",
    ),
    RedFlag.vision_change: rx(
        r"\bblurr?\w*", r"\bdouble vision", r"\bseeing (?:\w+ )?double", r"\bvision\b",
        r"\b(?:can'?t|cant|cannot|couldn'?t) see (?:right|straight|clearly|anything|well out|out "
        r"of|from)", r"\blost (?:my )?(?:sight|vision)", r"\bblind\w*", r"\beyesight",
        r"\bborros\w*", r"\bnubl\w*", r"\bveo (?:todo )?(?:doble|double|borroso|nublado|mal)",
        r"\bno (?:puedo )?ver? bien\b", r"\bdeje de ver\b", r"\bceguera",
        r"\bhard to see", r"\bspots in my (?:eye|vision)", r"\bvista (?:borrosa|nublada|doble)",
    ),
    RedFlag.drooping: rx(
        r"\bdroop\w*", r"\bsagg\w*", r"\bptosis", r"\bheavy (?:eyelid|lid|brow|eyebrow)",
        r"\b(?:eyelid|lid|brow|eyebrow|eye)s?\b.{0,25}\b(?:falling|hanging|lower|heavy|"
        r"won'?t open|half closed|closing|dropp\w*|drop\w*)",
        r"\bparpado\w*.{0,25}\b(?:caid\w*|cae\w*|cayendo|bajo|pesad\w*)",
        r"\bceja\w*.{0,20}\b(?:caid\w*|cae\w*|cayendo)",
        r"\bcaid[oa] (?:el|la|del) (?:parpado|ojo|ceja)",
        r"\b(?:ojo|parpado) caid\w*", r"\bface (?:is )?(?:uneven|lopsided|crooked)",
        r"\b(?:cayo|caido|caida|bajo|baja|cae|cayendo) (?:el |la |mi )?(?:parpado|ceja|ojo)",
        r"\bno puedo abrir (?:bien )?(?:el|mi|los) ojo", r"\bcan'?t (?:fully )?open (?:my|the) eye",
        r"\b(?:smile|mouth) (?:is )?(?:crooked|uneven|lopsided|drooping)",
    ),
    RedFlag.skin_colour_change: rx(
        r"\b(?:labio|lip|nariz|nose|piel|skin|frente|forehead)\w* (?:\w+ )?(?:blanc\w*|white|"
        r"morad\w*|purple|gris\w*|grey|gray|azul\w*|blue|dusky|fri[oa]|cold)\b",
        r"\b(?:turn\w*|went|going|gone|getting|look\w*|se (?:me |le )?puso|se esta poniendo|"
        r"se (?:me |le )?volvio|"
        r"se ve|esta|is|became) (?:\w+ )?(?:white|whitish|pale|grey|gray|greyish|grayish|blue|"
        r"bluish|purple|purplish|dusky|mottled|black|blanc\w*|morad\w*|gris\w*|azul\w*|"
        r"negr\w*)\b", r"\bblanch\w*", r"\bmottl\w*", r"\bdusky\b", r"\blivedo",
        r"\b(?:white|grey|gray|blue|purple|dusky|dark) (?:patch|area|skin|spot|lip|streak|"
        r"blotch|mark)\w*\b.{0,40}\b(?:filler|injection|shot|inject\w*|relleno|botox)",
        r"\b(?:filler|injection|relleno|hialuronico)\b.{0,40}\b(?:white|grey|gray|blue|purple|dusky|"
        r"blanc\w*|morad\w*|gris\w*|azul\w*)",
    ),
    RedFlag.burn_or_blister: rx(
        r"\bblister\w*", r"\bampolla\w*", r"\bblistering", r"\bquemadur\w*", r"\bscorch\w*",
        r"\b(?:burn\w*|quem\w*)\b.{0,50}\b(?:laser|peel|ipl|tratamiento|peeling|laser|bbl|"
        r"microneedl\w*)", r"\b(?:laser|peel|ipl|tratamiento|bbl)\b.{0,30}\b(?:burn\w*|quem\w*)",
        r"\bburn(?:ed|t|s)? (?:my|the) skin", r"\braw skin", r"\bskin (?:is )?raw",
        r"\bpiel (?:en )?carne viva",
    ),
    RedFlag.mood: rx(
        r"\bdepress\w*", r"\bsuicid\w*", r"\bkill (?:myself|me)\b", r"\bend (?:it all|my life)",
        r"\b(?:hurt|hurting|harm|harming|cut|cutting) myself", r"\bself[- ]?harm",
        r"\b(?:don'?t|do not|dont) (?:want|wanna) (?:to )?(?:live|be here|exist|wake up|be alive)",
        r"\bdark (?:thoughts|place)", r"\bbetter off dead", r"\bwant(?:ed)? to die",
        r"\bwanna die", r"\bhopeless", r"\bworthless", r"\bcan'?t stop crying",
        r"\bcry(?:ing)? (?:all the time|every day|a lot|constantly|nonstop)", r"\blow mood",
        r"\bmood\b.{0,20}\b(?:swings?|changes?|low|bad|down|dark|off|weird|terrible)",
        r"\b(?:feel\w*|been|so|very|really) (?:so |really |very )?(?:down|low|empty|numb|"
        r"sad|hopeless|dark)\b", r"\bdeprimid\w*", r"\bdepresion", r"\bquitarme la vida",
        r"\bmatarme", r"\bno quiero vivir", r"\bganas de morir", r"\bme quiero morir",
        r"\bpensamientos (?:oscuros|feos|negativos|raros|malos)", r"\bhacerme dano",
        r"\bsin ganas de (?:nada|vivir)", r"\bllor\w* (?:todo el tiempo|mucho|todos los dias)",
        r"\bmuy triste", r"\btriste todo", r"\bdepre\b", r"\bsuicide", r"\bunalive",
        r"\b(?:wasn'?t|weren'?t|not be|wasnt) alive", r"\bwish(?:es|ed)? (?:i|she|he) (?:was|were)"
        r"(?:n'?t alive| dead)", r"\bwithdrawn\b", r"\bthoughts? (?:of|about) (?:ending|killing|"
        r"hurting|dying|not)", r"\bending it\b", r"\b(?:lastimar|lastimarse|matarse|cortarse|"
        r"morirse)\b", r"\bquitarse la vida", r"\bhacerse dano", r"\bse quiere morir",
        r"\bbetter off without me", r"\b(?:don'?t|do not|dont) care about (?:\w+ )?(?:anything|"
        r"myself|my life|living) anymore",
    ),
    RedFlag.severe_headache: rx(
        _INTENSE + r" (?:\w+ )?(?:headache|migraine|dolor de cabeza|head ?ache)",
        r"\b(?:headache|head ?ache|dolor de cabeza|migrain\w*)\b.{0,30}\b(?:blur\w*|vision|"
        r"see|worst|won'?t go|wont go|days|vomit\w*|borros\w*|vista|fuerte|terrible|severe|"
        r"pounding|splitting)", r"\b(?:pounding|splitting) (?:\w+ )?head",
        r"\bpressure (?:in|behind) (?:my )?(?:head|eyes)",
    ),
    RedFlag.stomach_pain: rx(
        _INTENSE + r" (?:\w+ )?(?:stomach|abdominal|belly|tummy|gut|estomago|abdomen|panza)",
        r"\b(?:stomach|abdominal|belly|tummy|estomago|abdomen|panza)\b.{0,25}\b(?:pain|hurt\w*|"
        r"ache|cramp\w*|dolor|duele)\b.{0,20}\b(?:bad|severe|terrible|worse|a lot|mucho|"
        r"fuerte|horrible|can'?t)", r"\bvomit\w*", r"\bvomit", r"\bthrowing up\b",
        r"\bblood in (?:my )?(?:stool|poop)", r"\bdiarrea con sangre",
    ),
    RedFlag.chest_pain_or_fainting: rx(
        r"\bchest\b.{0,20}\b(?:pain|hurt\w*|tight\w*|pressure|heavy)",
        r"\b(?:pain|tight\w*|pressure) in (?:my )?chest", r"\bpassed out", r"\bpass(?:ing)? out",
        r"\bfaint\w*", r"\bblack(?:ed)? out", r"\bdesmay\w*", r"\bdolor (?:de|en el) pecho",
        r"\bpecho\b.{0,20}\b(?:duele|apret\w*|dolor)",
        r"\b(?:duele|dolor)\w* (?:\w+ )?(?:el |en el )?pecho",
        r"\bheart (?:is )?(?:racing|pounding)",
        r"\bpalpitation\w*", r"\bdizz\w*", r"\bmare\w*", r"\blightheaded",
    ),
    RedFlag.emergency: rx(
        r"\bemergenc\w*", r"\bemergencia\w*", r"\b911\b", r"\bthe er\b", r"\bto er\b",
        r"\ber visit", r"\be\.r\.", r"\bemergency room", r"\burgent care\b",
        r"\bambulanc\w*", r"\burgencias\b", r"\burgent\w*", r"\bsala de emergencia",
        r"\b(?:go|going|went|take (?:me|her|him)|get|rush\w*|head\w*) (?:to )?(?:the )?(?:er|"
        r"hospital|emergency)\b", r"\b(?:ir|voy|vamos|fui|llevar\w*) (?:a |al )(?:la )?"
        r"(?:hospital|urgencias|emergencia)", r"\bauxilio", r"🚑",
        r"\bsos\b", r"\basap\b.{0,30}\b(?:doctor|nurse|someone|call)", r"\bllamen(?:me)? ya\b",
    ),
}
# fmt: on

# Everyday phrases with a red-flag word in another sense ("blood test", "análisis de sangre").
BENIGN = re.compile(
    r"\bblood ?(?:test|tests|work|draw|labs?|pressure|sugar|thinners?|type|bank|donation|"
    r"donor|panel)\b|\b(?:analisis|examen|examenes|prueba|pruebas|estudios?) de sangre\b|"
    r"\bsangre en ayunas\b|\bpresion (?:alta|baja)\b|\b(?:family|work|personal|childcare|"
    r"car|house|home) emergenc\w*|\bemergencia (?:familiar|personal|en (?:el trabajo|la casa|casa))"
)
# After a laser or peel, small dark marks are expected pigment, not a changing mole.
AFTER_TREATMENT = re.compile(r"\b(?:laser|peel\w*|ipl|tratamiento|treatment|bbl|microneedl\w*)")
STRONG_MOLE = re.compile(r"\b(?:moles?|lunar\w*|birthmarks?)\b")

# A mole or spot that is new or changing: the object, and the change, near each other.
MOLE = re.compile(
    r"\b(?:moles?|lunar\w*|spots?|freckles?|manch\w*|growths?|bumps?|lesions?|birthmarks?|"
    r"marks?|bulto|bolita)\b"
)
MOLE_CHANGE = re.compile(
    r"\bnew\b|chang\w*|bigger|grow\w*|grew|darker|black|bleed\w*|itch\w*|crust\w*|raised|"
    r"irregular|uneven|different|weird|odd|colou?r|shape|spread\w*|scab\w*|larger|"
    r"\bcambi\w*|\bcrec\w*|\bgrande|\boscur\w*|\bnuev[oa]s?\b|\bsangr\w*|\bpica\b|\bcomez\w*|"
    r"\bforma\b|\bnegr[oa]\b|\braro\b|\brara\b|\bdistint\w*|doubled|tripled|sore that|"
    r"border\w*|edges?|bordes|disparej\w*|"
    r"not healing|won'?t heal|no (?:se )?cura|no sana"
)

# Negation right before a mention, or resolution after it, in the same clause.
NEGATION_BEFORE = re.compile(
    r"\b(?:no|not|without|sin|never|nunca|zero|none|no more|no longer|no further|ni|tampoco|"
    r"isn'?t|wasn'?t|aren'?t|haven'?t|hasn'?t|didn'?t|don'?t|doesn'?t|ya no|no hay|no tengo|"
    r"no tiene|no he tenido|nothing like|any|stopped|quit|dejo de|paro de|"
    r"ya se (?:me )?(?:bajo|quito|quitaron|fue|paso)|se me (?:bajo|quito|quitaron))"
    r"\s+(?:\w+\s+){0,3}$"
)
RESOLVED_AFTER = re.compile(
    r"^\W*(?:\w+\W+){0,7}?(?:stopped|went away|is gone|are gone|gone|went down|has gone down|"
    r"healed|resolved|cleared|is better|got better|much better|is fine|all good|subsided|"
    r"calmed down|is down|disappeared|went back|se quito|se fue|ya paso|paso|se detuvo|paro|"
    r"se calmo|bajo|mejor\w*|desaparecio|se curo|sano|ya no|se me quito|is almost gone|"
    r"almost gone|fading|faded|improving|improved|sanaron|se curaron|se quitaron)\b"
)
STILL_ACTIVE = re.compile(
    r"\b(?:won'?t|wont|doesn'?t|does not|didn'?t|can'?t|cannot|not|hasn'?t|haven'?t|never) "
    r"(?:\w+ )?(?:stop|quit|"
    r"go away|go down|heal|get better)|\bkeeps?\b|\bstill\b|\bagain\b|\bworse\b|\bno para\b|"
    r"\bno se (?:quita|detiene|para|cura|baja)|\bsigue\b|\botra vez\b|\bde nuevo\b|\bcomes back|"
    r"\bno (?:me |le |se )?(?:dej\w*|para) de\b|\bkeeps? (?:coming|getting)|\breopen"
)
# A negation inside a longer mention ("the redness isn't spreading").
INNER_NEGATION = re.compile(r"\b(?:isn'?t|is not|not|no|never|aren'?t|wasn'?t|hasn'?t|ya no)\b")
UNCERTAIN = re.compile(r"\b(?:not sure|unsure|no se si|no estoy segur\w*|i think|creo que|maybe)\b")
MILD = re.compile(
    r"\b(?:a (?:little|tiny|bit|small)|little|tiny|slight\w*|mild\w*|minor|a touch|un poco|"
    r"poquito|poquita|leve\w*|small amount|some)\b"
)

# fmt: off
CLINICAL = rx(
    r"\bnormal\b", r"\bexpected\b", r"\bresults?\b", r"\bresultados?\b", r"\bbiops\w*",
    r"\bpatholog\w*", r"\bdiagnos\w*", r"\bside effects?", r"\befectos?\b", r"\bsafe\b",
    r"\bseguro (?:que|usar|tomar)", r"\bcream\w*", r"\bcrema\w*", r"\bointment", r"\bpomada",
    r"\blotion", r"\bgel\b", r"\bmedic(?:ation|ine|ina|amento)\w*", r"\bmeds\b", r"\bpills?\b",
    r"\bpastilla\w*",
    r"\bdos(?:e|es|is|age)\b", r"\bprescri\w*", r"\breceta\b", r"\brefill", r"\brx\b",
    r"\btretinoin", r"\bretin", r"\bretinol", r"\baccutane", r"\bisotret\w*", r"\babsorica",
    r"\bclaravis", r"\bminocycl\w*", r"\bdoxy\w*", r"\bspiro\w*", r"\bmethotrex\w*",
    r"\bdupixent", r"\bhumira", r"\botezla", r"\bskyrizi", r"\bstelara", r"\bcosentyx",
    r"\bbiologic", r"\bsteroid", r"\bprednis\w*", r"\bhydrocort\w*", r"\bclobetasol",
    r"\btriamcinol\w*", r"\btacrolimus", r"\befudex", r"\bfluorouracil", r"\bimiquimod",
    r"\baldara", r"\bmetronidazol\w*", r"\bivermectin", r"\bantibiotic\w*", r"\bitch\w*",
    r"\bpica\b", r"\bpicazon", r"\bcomezon", r"\brash\w*", r"\bsarpullido", r"\bredness",
    r"\brojez\w*", r"\brojo\b", r"\broja\b", r"\bdry\b", r"\bdryness", r"\bresec\w*",
    r"\bpeel\w*", r"\bflak\w*", r"\bscab\w*", r"\bcostra\w*", r"\bscar\w*", r"\bcicatri\w*",
    r"\bstitch\w*", r"\bsutur\w*", r"\bpuntos\b", r"\bbandage", r"\bdressing", r"\bvenda\w*",
    r"\bbruis\w*", r"\bmoreton\w*", r"\bsore\b", r"\bsoreness", r"\btender\w*", r"\bpain\w*",
    r"\bhurt\w*", r"\bduele\b", r"\bdolor\w*", r"\bsting\w*", r"\bardor\b", r"\barde\b",
    r"\bburn\w*", r"\bquema\w*", r"\bnumb(?:ness|ing|ed)?\b", r"\btingl\w*", r"\bhormigueo",
    r"\blump\w*",
    r"\bbump\w*", r"\bbulto", r"\bpimple\w*", r"\bgranit\w*", r"\bbreak\w* out", r"\bbreakouts?",
    r"\bbrote", r"\bflare\w*", r"\bheal\w*", r"\bcura\w*", r"\bsanar", r"\bpregnan\w*",
    r"\bembaraz\w*",
    r"\bbreastfeed\w*", r"\bnursing\b", r"\blactan\w*", r"\bsunscreen", r"\bprotector solar",
    r"\bsun exposure", r"\bwarts?\b", r"\bverruga\w*", r"\bhair (?:loss|falling|is falling)",
    r"\bcaida del (?:pelo|cabello)", r"\bcayendo el (?:pelo|cabello)", r"\bis (?:it|this|that) "
    r"(?:ok|okay|normal|safe|bad|serious|expected)", r"\bes normal", r"\bshould i (?:keep|stop|"
    r"use|apply|take|be worried|worry|change|still|continue|put)", r"\bcan i (?:keep|stop|use|"
    r"apply|take|put|shower|swim|exercise|work ?out|drink|wear|get it wet|go in the sun|shave)",
    r"\bpuedo (?:seguir|usar|tomar|aplicar|ponerme|banarme|ducharme|mojar|hacer ejercicio|"
    r"maquillarme|tomar alcohol)", r"\bsigo (?:usando|tomando)", r"\bworried\b",
    r"\bconcerned\b", r"\bpreocup\w*", r"\bworr\w*", r"\bsymptom\w*", r"\bsintoma\w*",
    r"\bred\b", r"\bpink\b", r"\bswell\w*", r"\bswollen", r"\bhinch\w*", r"\binflam\w*",
    r"\bmakeup\b", r"\bmaquillaje", r"\bwash\w* (?:it|the area|my face)", r"\bice\b",
    r"\bvaseline", r"\baquaphor", r"\bpetroleum", r"\bchapped", r"\bcracked", r"\blips\b",
    r"\bnosebleed", r"\bheadache", r"\bdolor de cabeza", r"\bjoint", r"\bback pain",
    r"\bcancer\w*", r"\bmelanoma", r"\bprecancer\w*", r"\bcyst\w*", r"\bquiste",
    r"\bmilia", r"\bkeloid", r"\bqueloide", r"\bhyperpig\w*", r"\bdark spots?", r"\bmelasma",
    r"\bpigment\w*", r"\bbotox\b.{0,30}\b(?:wear\w* off|not working|didn'?t work|uneven)",
    r"\b(?:didn'?t|not|isn'?t|no) (?:\w+ )?(?:work\w*|help\w*|improv\w*|mejor\w*|funcion\w*)",
    r"\bsame as before", r"\bno improvement", r"\bsigue igual", r"\bsigo igual",
    r"\bsmall (?:amount|bit) of", r"\bunder (?:my|the) (?:skin|eye)",
)
# fmt: on
