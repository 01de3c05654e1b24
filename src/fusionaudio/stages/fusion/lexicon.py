"""Words for sound sources: how a caption names a source and what it does, and which
words count as naming a source at all.

The planner decides *which* sources a caption may name; this module says how to say it
(``a dog`` / ``barks``) and gives the verifier its vocabulary: every word that names a
sound source (the content words of the 521 AudioSet labels plus common synonyms), so a
caption that names a source the plan does not hold is caught whatever words it uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from fusionaudio.backends.audioset_ontology import yamnet_labels


@dataclass(frozen=True)
class SourceWords:
    noun: str  # with its article: "a dog", "rain"
    verb: str  # agrees with the noun: "barks", "falls"
    plural_noun: str  # "dogs"
    plural_verb: str  # "bark"
    synonyms: tuple[str, ...] = ()  # more words that name this source in a caption
    event: bool = False  # discrete events that can be counted ("barks seven times")

    def words(self) -> set[str]:
        text = " ".join([self.noun, self.plural_noun, *self.synonyms])
        return {stem(w) for w in re.findall(r"[a-z]+", text.lower())} - {"a", "an", "the"}


def _w(
    noun: str,
    verb: str,
    plural_noun: str,
    plural_verb: str,
    synonyms: str = "",
    event: bool = False,
) -> SourceWords:
    return SourceWords(noun, verb, plural_noun, plural_verb, tuple(synonyms.split()), event)


# Keyed by lower-case AudioSet label (family heads and their members). Verbs describe the
# sound, never the scene.
LEXICON: dict[str, SourceWords] = {
    "dog": _w("a dog", "barks", "dogs", "bark", "bark barking yip puppy canine woof", True),
    "bark": _w("a dog", "barks", "dogs", "bark", "dog barking yip puppy canine woof", True),
    "howl": _w("an animal", "howls", "animals", "howl", "howling wolf", True),
    "cat": _w("a cat", "meows", "cats", "meow", "meowing mew kitten feline purr", True),
    "meow": _w("a cat", "meows", "cats", "meow", "meowing mew kitten feline", True),
    "cattle, bovinae": _w("a cow", "moos", "cows", "moo", "moo mooing cattle bovine", True),
    "moo": _w("a cow", "moos", "cows", "moo", "mooing cattle bovine", True),
    "horse": _w("a horse", "neighs", "horses", "neigh", "neigh neighing whinny hoof hooves", True),
    "clip-clop": _w("hooves", "clip-clop", "hooves", "clip-clop", "horse hoof clopping", True),
    "neigh, whinny": _w("a horse", "neighs", "horses", "neigh", "whinny neighing", True),
    "sheep": _w("a sheep", "bleats", "sheep", "bleat", "bleat bleating lamb", True),
    "bleat": _w("a sheep", "bleats", "sheep", "bleat", "bleating lamb goat", True),
    "goat": _w("a goat", "bleats", "goats", "bleat", "bleat bleating", True),
    "pig": _w("a pig", "grunts", "pigs", "grunt", "oink grunting", True),
    "chicken, rooster": _w(
        "a chicken", "clucks", "chickens", "cluck", "hen rooster cluck crow", True
    ),
    "crowing, cock-a-doodle-doo": _w(
        "a rooster", "crows", "roosters", "crow", "rooster cock", True
    ),
    "cluck": _w("a hen", "clucks", "hens", "cluck", "chicken clucking", True),
    "duck": _w("a duck", "quacks", "ducks", "quack", "quack quacking", True),
    "quack": _w("a duck", "quacks", "ducks", "quack", "quacking", True),
    "goose": _w("a goose", "honks", "geese", "honk", "honking geese", True),
    "bird": _w("a bird", "chirps", "birds", "chirp", "birdsong chirping tweet song", True),
    "bird vocalization, bird call, bird song": _w(
        "a bird", "sings", "birds", "sing", "birdsong chirp chirping tweet call", True
    ),
    "chirp, tweet": _w("a bird", "chirps", "birds", "chirp", "tweet chirping birdsong", True),
    "crow": _w("a crow", "caws", "crows", "caw", "caw cawing", True),
    "caw": _w("a crow", "caws", "crows", "caw", "cawing", True),
    "owl": _w("an owl", "hoots", "owls", "hoot", "hoot hooting", True),
    "hoot": _w("an owl", "hoots", "owls", "hoot", "hooting", True),
    "pigeon, dove": _w("a pigeon", "coos", "pigeons", "coo", "dove cooing", True),
    "frog": _w("a frog", "croaks", "frogs", "croak", "croak croaking toad", True),
    "croak": _w("a frog", "croaks", "frogs", "croak", "croaking toad", True),
    "insect": _w("insects", "buzz", "insects", "buzz", "buzz buzzing bug", False),
    "cricket": _w("crickets", "chirp", "crickets", "chirp", "chirping insect", False),
    "bee, wasp, etc.": _w("a bee", "buzzes", "bees", "buzz", "buzzing wasp insect", False),
    "mosquito": _w("a mosquito", "whines", "mosquitoes", "whine", "insect buzzing", False),
    "fly, housefly": _w("a fly", "buzzes", "flies", "buzz", "buzzing insect", False),
    "whale vocalization": _w("a whale", "calls", "whales", "call", "whale song", True),
    "roaring cats (lions, tigers)": _w(
        "a big cat", "roars", "big cats", "roar", "roar lion tiger", True
    ),
    "roar": _w("an animal", "roars", "animals", "roar", "roaring", True),
    "animal": _w("an animal", "calls", "animals", "call", "creature", True),
    "rain": _w("rain", "falls", "rain", "falls", "raindrops rainfall patter", False),
    "raindrop": _w("raindrops", "patter", "raindrops", "patter", "rain", False),
    "rain on surface": _w("rain", "patters on a surface", "rain", "patters", "raindrops", False),
    "thunder": _w("thunder", "rumbles", "thunder", "rumbles", "thunderclap thunderstorm", True),
    "thunderstorm": _w(
        "a thunderstorm", "rumbles", "thunderstorms", "rumble", "thunder storm", False
    ),
    "wind": _w("wind", "blows", "wind", "blows", "gust gusts gusting breeze", False),
    "wind noise (microphone)": _w(
        "wind", "buffets the microphone", "wind", "buffets", "gust", False
    ),
    "rustling leaves": _w("leaves", "rustle", "leaves", "rustle", "rustling foliage", False),
    "water": _w("water", "splashes", "water", "splashes", "splash splashing", False),
    "splash, splatter": _w("water", "splashes", "water", "splashes", "splash splashing", True),
    "ocean": _w("the sea", "surges", "the sea", "surges", "ocean waves surf sea", False),
    "waves, surf": _w("waves", "break", "waves", "break", "surf sea ocean", False),
    "stream": _w("a stream", "flows", "streams", "flow", "brook flowing water", False),
    "waterfall": _w("a waterfall", "roars", "waterfalls", "roar", "water", False),
    "fire": _w("a fire", "crackles", "fires", "crackle", "crackling flames", False),
    "crackle": _w("a fire", "crackles", "fires", "crackle", "crackling flames", False),
    "walk, footsteps": _w(
        "footsteps", "sound", "footsteps", "sound", "steps walking footstep", True
    ),
    "run": _w("footsteps", "run", "footsteps", "run", "running steps", True),
    "applause": _w(
        "an audience", "applauds", "audiences", "applaud", "applause clapping clap", False
    ),
    "clapping": _w("hands", "clap", "hands", "clap", "clapping clap applause", True),
    "cheering": _w("a crowd", "cheers", "crowds", "cheer", "cheering cheers", False),
    "crowd": _w("a crowd", "murmurs", "crowds", "murmur", "people audience", False),
    "chatter": _w("people", "chatter", "people", "chatter", "crowd chattering", False),
    "laughter": _w("someone", "laughs", "people", "laugh", "laughter laughing laugh", True),
    "giggle": _w("someone", "giggles", "people", "giggle", "laughter laughing", True),
    "cough": _w("someone", "coughs", "people", "cough", "cough coughing", True),
    "sneeze": _w("someone", "sneezes", "people", "sneeze", "sneeze sneezing", True),
    "screaming": _w("someone", "screams", "people", "scream", "scream screaming shriek", True),
    "shout": _w("someone", "shouts", "people", "shout", "shouting yell", True),
    "baby cry, infant cry": _w("a baby", "cries", "babies", "cry", "infant crying", True),
    "crying, sobbing": _w("someone", "cries", "people", "cry", "crying sobbing", True),
    "whistling": _w("someone", "whistles", "people", "whistle", "whistling", True),
    "siren": _w("a siren", "wails", "sirens", "wail", "wailing", False),
    "civil defense siren": _w("a siren", "wails", "sirens", "wail", "air raid", False),
    "police car (siren)": _w("a police siren", "wails", "police sirens", "wail", "siren", False),
    "ambulance (siren)": _w("an ambulance siren", "wails", "sirens", "wail", "siren", False),
    "emergency vehicle": _w("an emergency siren", "wails", "sirens", "wail", "siren", False),
    "vehicle horn, car horn, honking": _w(
        "a car horn", "honks", "car horns", "honk", "horn honk honking", True
    ),
    "car": _w("a car", "drives by", "cars", "drive by", "automobile vehicle", False),
    "vehicle": _w("a vehicle", "passes", "vehicles", "pass", "", False),
    "motor vehicle (road)": _w("a vehicle", "drives by", "vehicles", "drive by", "road", False),
    "bus": _w("a bus", "rumbles", "buses", "rumble", "coach", False),
    "truck": _w("a truck", "rumbles", "trucks", "rumble", "lorry", False),
    "motorcycle": _w("a motorcycle", "roars", "motorcycles", "roar", "motorbike", False),
    "train": _w("a train", "rolls past", "trains", "roll past", "railway rail locomotive", False),
    "railroad car, train wagon": _w(
        "a train", "clatters along", "trains", "clatter", "rail railway", False
    ),
    "train horn": _w("a train horn", "blares", "train horns", "blare", "train", True),
    "train whistle": _w("a train whistle", "blows", "train whistles", "blow", "train", True),
    "aircraft": _w("an aircraft", "flies over", "aircraft", "fly over", "plane airplane", False),
    "fixed-wing aircraft, airplane": _w(
        "an airplane", "flies over", "airplanes", "fly over", "plane aircraft", False
    ),
    "jet engine": _w("a jet engine", "roars", "jet engines", "roar", "jet aircraft plane", False),
    "propeller, airscrew": _w(
        "a propeller plane", "drones", "propeller planes", "drone", "propeller aircraft", False
    ),
    "helicopter": _w("a helicopter", "whirs", "helicopters", "whir", "rotor chopper", False),
    "engine": _w("an engine", "runs", "engines", "run", "motor", False),
    "idling": _w("an engine", "idles", "engines", "idle", "motor idling", False),
    "accelerating, revving, vroom": _w(
        "an engine", "revs", "engines", "rev", "motor revving", False
    ),
    "boat, water vehicle": _w("a boat", "chugs", "boats", "chug", "motorboat", False),
    "explosion": _w("an explosion", "booms", "explosions", "boom", "blast boom explode", True),
    "burst, pop": _w("something", "bursts", "things", "burst", "pop", True),
    "gunshot, gunfire": _w(
        "a gun", "fires", "guns", "fire", "gunshot gunshots shot shots gunfire", True
    ),
    "machine gun": _w("a machine gun", "fires", "machine guns", "fire", "gunfire gun", True),
    "artillery fire": _w("artillery", "fires", "artillery", "fires", "cannon gun", True),
    "glass": _w("glass", "clinks", "glass", "clinks", "glass", True),
    "shatter": _w("glass", "shatters", "glass", "shatters", "breaking smash", True),
    "door": _w("a door", "closes", "doors", "close", "door", True),
    "slam": _w("a door", "slams", "doors", "slam", "slamming", True),
    "knock": _w("someone", "knocks", "people", "knock", "knocking", True),
    "hammer": _w("a hammer", "strikes", "hammers", "strike", "hammering", True),
    "chopping (food)": _w("a knife", "chops", "knives", "chop", "chopping", True),
    "wood": _w("wood", "is struck", "wood", "is struck", "chopping chop log", True),
    "chop": _w("an axe", "chops wood", "axes", "chop wood", "chopping wood log", True),
    "sawing": _w("a saw", "cuts", "saws", "cut", "saw sawing", False),
    "chainsaw": _w("a chainsaw", "buzzes", "chainsaws", "buzz", "saw", False),
    "bell": _w("a bell", "rings", "bells", "ring", "ringing chime", True),
    "church bell": _w("a church bell", "tolls", "church bells", "toll", "bell tolling", True),
    "gong": _w("a gong", "resounds", "gongs", "resound", "gong", True),
    "chime": _w("a chime", "rings", "chimes", "ring", "chiming", True),
    "alarm": _w("an alarm", "sounds", "alarms", "sound", "alarm", True),
    "alarm clock": _w("an alarm clock", "rings", "alarm clocks", "ring", "alarm", True),
    "telephone bell ringing": _w(
        "a telephone", "rings", "telephones", "ring", "phone ringing", True
    ),
    "clock": _w("a clock", "ticks", "clocks", "tick", "ticking tick-tock", True),
    "tick-tock": _w("a clock", "ticks", "clocks", "tick", "ticking", True),
    "typing": _w("someone", "types", "people", "type", "keyboard typing keys", True),
    "washing machine": _w(
        "a washing machine", "churns", "washing machines", "churn", "washer appliance", False
    ),
    "vacuum cleaner": _w("a vacuum cleaner", "hums", "vacuum cleaners", "hum", "vacuum", False),
    "blender": _w("a blender", "whirs", "blenders", "whir", "appliance", False),
    "microwave oven": _w("a microwave oven", "hums", "microwave ovens", "hum", "microwave", False),
    "mechanical fan": _w("a fan", "whirs", "fans", "whir", "fan", False),
    "air conditioning": _w("an air conditioner", "hums", "air conditioners", "hum", "", False),
    "tools": _w("a tool", "works", "tools", "work", "tool", True),
    "power tool": _w("a power tool", "whines", "power tools", "whine", "drill", False),
    "drill": _w("a drill", "whines", "drills", "whine", "drilling", False),
    "camera": _w("a camera shutter", "clicks", "camera shutters", "click", "shutter", True),
    "whoosh, swoosh, swish": _w(
        "something", "whooshes past", "things", "whoosh past", "whoosh swoosh", True
    ),
    "beep, bleep": _w("a device", "beeps", "devices", "beep", "beep beeping", True),
    "video game music": _w("game music", "plays", "game music", "plays", "", False),
}

# Words of AudioSet labels that describe a sound's quality, place or kind rather than
# naming a source: the verifier does not treat them as source claims.
NOT_SOURCE_WORDS = frozenset(
    """
    sound sounds noise noises effect effects small large medium room hall inside outside
    urban manmade rural natural environmental high low pitched pitch loud soft quiet hum
    music musical speech speaking speak voice silence static white pink brown mains
    background foreground ambient ambience dynamics sine wave tone tones chirp beep bleep
    click clicking tick tap thump thud bang knock rumble rustle squeak creak whir buzz
    pop crack crackle burst clatter whoosh swoosh swish hiss sizzle whistle echo
    reverberation distortion heavy light fast slow single multiple other generic
    domestic wild pets farm working home house animals animal thing things
    drum drums beat rhythm song singing sing vocal vocals choir chant
    rain wind water fire thunder
    electric acoustic electronic mechanical power hand hands steam air plucked bowed
    string strings instrument instruments percussion ensemble orchestra band sampler
    male female man woman men women child children kid kids adult baby babies human
    conversation narration monologue babbling shout yell whisper whispering
    sad happy tender exciting angry scary funny new age old style hit slap
    vehicle engine motor road surface inside outside car
    big bit busy call change clear close open pass play playing record recording run
    start mid space public civil defense double field french game signal unit
    performance technique reflex frequency sidetone harmonic pulse throb flight section
    fill slide roll snap break bounce crash drop pour flow tear rub scrape scratch
    boom blast crack whack thwack smack thunk clang clank ding dong ping zing boing
    tinkle jingle jangle rattle rasp squeal roar rumble wail growl groan moan
    trickle gush drip plop splash patter hum toll ring chime tick tock tap
    clickety clack clip clop idle rev vroom accelerating revving speed slosh squish
    wheeze gasp sigh pant breath breathing snore sniff snort
    """.split()
)
# Some source words are also common description words; they name a source only in the
# families that own them, so ``rain``, ``wind``, ``water`` and ``fire`` are source
# words too (checked through the lexicon) but not through the generic AudioSet scan.


def stem(word: str) -> str:
    """A crude English stem so that dog/dogs, bark/barks/barking, crackle/crackling
    compare equal: strip -ing/-ies/-es/-s/-ed, then a final -e."""
    w = word.lower()
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] in "bdgmnprt":
            w = w[:-1]  # running -> run, but buzzing -> buzz
    elif len(w) > 5 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("es") and (w[-3] in "sxz" or w[-4:-2] in ("ch", "sh")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 3 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]
    return w


def words_for(label: str, member_tags: tuple[str, ...] = ()) -> SourceWords:
    """How to name a source: its own entry, a member tag's, or plain words from the label."""
    for key in (label, *member_tags):
        entry = LEXICON.get(key.lower())
        if entry is not None:
            return entry
    name = label.split(",")[0].strip().lower()
    name = re.sub(r"\s*\(.*?\)", "", name)
    return SourceWords(
        noun=f"the sound of {name}",
        verb="is heard",
        plural_noun=f"the sound of {name}",
        plural_verb="is heard",
        synonyms=tuple(name.split()),
        event=False,
    )


@cache
def source_vocabulary() -> frozenset[str]:
    """Stems of every word that names a sound source (AudioSet labels and the lexicon)."""
    words: set[str] = set()
    labels = yamnet_labels()
    genres_and_moods = set(labels[211:277]) | {labels[132]}  # described by the music plan
    for label in labels:
        if label in genres_and_moods:
            continue
        for w in re.findall(r"[a-z]+", label.lower()):
            if len(w) > 2 and w not in NOT_SOURCE_WORDS:
                words.add(stem(w))
    for entry in LEXICON.values():
        words |= entry.words()
    generic = {stem(w) for w in NOT_SOURCE_WORDS} - {
        "rain", "wind", "water", "fire", "thunder", "car", "engine", "vehicle", "motor", "baby",
    }  # fmt: skip
    stop = {
        stem(w)
        for w in ("and", "the", "etc", "for", "with", "sound", "someone", "something", "people")
    }
    return frozenset(w for w in words if w not in generic and w not in stop and len(w) > 2)
