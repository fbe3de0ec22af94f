//! The words the reader knows: field names people use, and the vocabularies it recognises in
//! text. Plain lists a person can read and extend (kept one line per several entries: the file
//! is excluded from rustfmt, which would put every word on a line of its own).

pub(crate) const SKIP_KEYS: &[&str] = &[
    "id", "_id", "uuid", "createdat", "updatedat",
];

pub(crate) const ORDER_KEYS: &[&str] = &[
    "order", "number", "scenenumber", "sequence", "seq", "position", "index", "n", "no", "num",
];

pub(crate) const RULE_CATEGORIES: &[&str] = &[
    "physics", "magic", "technology", "society", "history",
];

pub(crate) const NAME_KEYS: &[&str] = &[
    "name", "fullname", "charactername", "character", "who", "called", "firstname",
];

pub(crate) const PLACE_NAME_KEYS: &[&str] = &[
    "name", "place", "location", "title", "called", "where",
];

pub(crate) const ROLE_KEYS: &[&str] = &[
    "role", "part", "function", "archetype", "type", "position",
];

pub(crate) const PERSONALITY_KEYS: &[&str] = &[
    "personality", "traits", "trait", "temperament", "nature", "attitude", "demeanor", "demeanour",
    "manner", "mood",
];

pub(crate) const APPEARANCE_KEYS: &[&str] = &[
    "appearance", "looks", "look", "physical", "description", "desc", "visual", "face", "body",
    "features", "age", "build", "hair", "eyes", "height",
];

pub(crate) const COSTUME_KEYS: &[&str] = &[
    "costume", "outfit", "clothes", "clothing", "wardrobe", "wears", "dress", "attire",
];

pub(crate) const VOICE_KEYS: &[&str] = &[
    "voice", "speech", "accent", "sound", "sounds", "speaks",
];

pub(crate) const BACKGROUND_KEYS: &[&str] = &[
    "background", "backstory", "history", "bio", "biography", "past", "origin", "story",
];

pub(crate) const COLOR_KEYS: &[&str] = &[
    "color", "colour", "colors", "colours", "palette", "hex",
];

pub(crate) const RULE_KEYS: &[&str] = &[
    "rules", "rule", "laws", "law", "constraints",
];

pub(crate) const DESC_KEYS: &[&str] = &[
    "description", "desc", "details", "detail", "about", "what", "look", "looks", "notes", "text",
];

pub(crate) const IDEA_LOCATION_KEYS: &[&str] = &[
    "location", "place", "setting", "where", "locale", "set", "at", "scenelocation",
];

pub(crate) const IDEA_TIME_KEYS: &[&str] = &[
    "timeofday", "time", "when", "tod", "daytime", "hour",
];

pub(crate) const IDEA_WEATHER_KEYS: &[&str] = &[
    "weather", "conditions", "sky",
];

pub(crate) const IDEA_TITLE_KEYS: &[&str] = &[
    "title", "heading", "label", "name", "slugline",
];

pub(crate) const IDEA_CHARACTER_KEYS: &[&str] = &[
    "characters", "character", "cast", "who", "people", "present", "with", "speaker",
];

pub(crate) const IDEA_PROP_KEYS: &[&str] = &[
    "props", "prop", "objects", "object", "items", "item", "things",
];

pub(crate) const SCENE_LIST_KEYS: &[&str] = &[
    "scenes", "ideas", "shots", "scene", "idea",
];

pub(crate) const SPEAKER_KEYS: &[&str] = &[
    "character", "speaker", "who", "by", "from", "name", "voice",
];

pub(crate) const LINE_KEYS: &[&str] = &[
    "line", "lines", "says", "dialogue", "quote", "speech", "text",
];

pub(crate) const ROLE_WORDS: &[&str] = &[
    "protagonist", "antagonist", "hero", "heroine", "villain", "mentor", "sidekick", "supporting",
    "lead", "narrator", "rival", "ally", "deuteragonist", "comic relief", "minor",
];

pub(crate) const COSTUME_WORDS: &[&str] = &[
    "coat", "jacket", "dress", "scarf", "hat", "cap", "boots", "cloak", "shirt", "trousers",
    "jumper", "sweater", "uniform", "robe", "apron", "gloves", "wears", "wearing", "oilskin",
    "hood", "cape", "armor", "armour", "suit", "skirt", "shawl", "overalls", "jeans", "raincoat",
    "headscarf", "overcoat", "waistcoat", "vest", "sweatshirt", "hoodie", "tunic", "gown", "boot",
    "sandals", "shoes", "trench", "parka", "mittens", "beret", "bonnet", "helmet", "mask",
];

pub(crate) const APPEARANCE_WORDS: &[&str] = &[
    "hair", "eyes", "tall", "short", "years", "beard", "face", "skin", "freckles", "thin", "stout",
    "scar", "young", "elderly", "height", "bald", "eyed", "haired", "slender", "broad", "looks",
];

pub(crate) const AGE_WORDS: &[&str] = &[
    "old", "young", "teen", "teenage", "teenager", "child", "kid", "baby", "elderly", "aged",
    "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "twenty", "thirty", "forty", "fifty", "sixty",
    "seventy", "eighty", "ninety",
];

pub(crate) const VOICE_WORDS: &[&str] = &[
    "voice", "speaks", "accent", "sounds", "whispery", "gravelly", "husky", "raspy", "lilting",
    "booming",
];

pub(crate) const STOP: &[&str] = &[
    "the", "and", "a", "an", "of", "to", "in", "on", "at", "as", "is", "are", "was", "with",
    "reach", "reaches", "enter", "enters", "leave", "leaves", "cross", "crosses", "our", "my",
    "your", "them", "him", "old", "her", "his", "their", "its", "they", "she", "he", "it", "for",
    "from", "by", "up", "out", "into", "under", "over", "then", "that", "this", "but", "all",
    "one",
];

// --- vocabularies of free text ---

/// Verbs of speech that tie a name to a quotation.
pub const SPEECH_VERBS: &[&str] = &[
    "says", "said", "asks", "asked", "whispers", "whispered", "shouts", "shouted", "replies",
    "replied", "calls", "called", "cries", "cried", "mutters", "muttered", "answers", "answered",
    "yells", "yelled", "murmurs", "murmured", "tells", "told", "sings", "sang", "adds", "added",
    "laughs", "snaps", "warns", "warned", "begs", "pleads", "insists", "breathes", "hisses",
];

/// Colour names people write, and the colour each stands for.
pub const COLOR_NAMES: &[(&str, &str)] = &[
    ("midnight blue", "#191970"), ("navy", "#1f2a44"), ("teal", "#1f7a7a"),
    ("turquoise", "#30b5b0"), ("cyan", "#3cc4d8"), ("blue", "#2f5d9e"), ("azure", "#4f8fd8"),
    ("indigo", "#3b2f7a"), ("violet", "#7a4fa8"), ("purple", "#6a3d8f"), ("lavender", "#b4a7d6"),
    ("magenta", "#b03a8c"), ("pink", "#e58fb0"), ("rose", "#c9607a"), ("crimson", "#a3192f"),
    ("scarlet", "#c8261e"), ("red", "#b83227"), ("rust", "#a4502a"), ("orange", "#e07b28"),
    ("amber", "#e0a030"), ("gold", "#d4a838"), ("golden", "#d4a838"), ("yellow", "#e8cf3a"),
    ("ochre", "#b8862b"), ("olive", "#6f7a32"), ("green", "#3f8f4a"), ("emerald", "#2e8b57"),
    ("moss", "#5b6e3a"), ("sage", "#8fa88a"), ("brown", "#6e4b32"), ("umber", "#5a3d28"),
    ("sepia", "#7a5c3e"), ("tan", "#c2a27a"), ("beige", "#d8c8a8"), ("cream", "#efe6cf"),
    ("ivory", "#f2ecd8"), ("white", "#eeeeea"), ("silver", "#b8bcc2"), ("grey", "#7d8288"),
    ("gray", "#7d8288"), ("slate", "#5d6770"), ("charcoal", "#33373c"), ("black", "#151517"),
];

/// Times of day as people write them, mapped to the spec's values.
pub const TIMES: &[(&str, &str)] = &[
    ("dawn", "dawn"), ("sunrise", "dawn"), ("daybreak", "dawn"), ("first light", "dawn"),
    ("twilight", "twilight"), ("dusk", "evening"), ("sunset", "evening"), ("evening", "evening"),
    ("morning", "morning"), ("noon", "afternoon"), ("midday", "afternoon"),
    ("afternoon", "afternoon"), ("daytime", "afternoon"), ("midnight", "night"),
    ("night", "night"), ("nighttime", "night"), ("tonight", "night"), ("moonlight", "night"),
    ("moonlit", "night"),
];

/// Weather as people write it, mapped to the spec's values (stronger weather first).
pub const WEATHERS: &[(&str, &str)] = &[
    ("blizzard", "snowy"), ("snow", "snowy"), ("snowy", "snowy"), ("snowing", "snowy"),
    ("snowfall", "snowy"), ("storm", "stormy"), ("stormy", "stormy"), ("thunder", "stormy"),
    ("thunderstorm", "stormy"), ("lightning", "stormy"), ("gale", "stormy"), ("tempest", "stormy"),
    ("rain", "rainy"), ("rainy", "rainy"), ("raining", "rainy"), ("drizzle", "rainy"),
    ("downpour", "rainy"), ("rainstorm", "stormy"), ("fog", "foggy"), ("foggy", "foggy"),
    ("mist", "foggy"), ("misty", "foggy"), ("haze", "foggy"), ("hazy", "foggy"),
    ("cloudy", "cloudy"), ("overcast", "cloudy"), ("clouds", "cloudy"),
];

/// Nouns that name a place (used to find locations in free text: "in the old kitchen").
pub const PLACE_NOUNS: &[&str] = &[
    "kitchen", "room", "bedroom", "hall", "hallway", "corridor", "cellar", "basement", "attic",
    "library", "office", "study", "house", "home", "cottage", "cabin", "hut", "tavern", "inn",
    "bar", "pub", "shop", "store", "church", "chapel", "temple", "castle", "tower", "lighthouse",
    "stair", "stairs", "staircase", "station", "platform", "train", "ship", "deck", "boat",
    "harbor", "harbour", "port", "dock", "docks", "pier", "quay", "wharf", "beach", "shore",
    "coast", "sea", "ocean", "bay", "lake", "river", "bridge", "forest", "woods", "wood", "grove",
    "jungle", "orchard", "field", "fields", "meadow", "farm", "garden", "park", "hill", "hills",
    "valley", "mountain", "mountains", "peak", "cliff", "cliffs", "ridge", "desert", "dunes",
    "canyon", "cave", "tunnel", "mine", "street", "streets", "road", "alley", "square", "market",
    "marketplace", "city", "town", "village", "rooftop", "roof", "plaza", "courtyard", "yard",
    "camp", "school", "classroom", "hospital", "prison", "cell", "lab", "laboratory", "factory",
    "warehouse", "workshop", "studio", "theatre", "theater", "palace", "throne", "ruins", "island",
    "swamp", "marsh", "moor", "moors", "moorland", "heath", "fen", "bog", "glacier", "tundra", "spaceship", "cockpit", "bunker", "stable", "barn",
    "mill", "well", "graveyard", "cemetery", "crypt", "vault", "gate", "wall", "lantern room",
];

/// Words of world rules.
pub const RULE_WORDS: &[&str] = &[
    "rule", "rules", "law", "laws", "must", "never", "always", "cannot", "can't", "forbidden",
    "only", "nobody", "no one", "everyone", "obeys", "obey",
];

/// Words of tone, mood and style notes.
pub const STYLE_WORDS: &[&str] = &[
    "tone", "tones", "mood", "style", "look", "looks", "feel", "feels", "aesthetic", "palette",
    "colour", "colours", "color", "colors", "lighting", "lit", "light", "shot", "shots", "lens",
    "grain", "animated", "animation", "storybook", "painterly", "noir", "pastel", "watercolor",
    "watercolour", "cinematic", "atmosphere", "atmospheric", "gritty", "whimsical", "dreamlike",
    "moody", "bright", "muted", "saturated", "desaturated", "contrast", "texture", "visual",
    "visuals", "vibe", "handheld", "hue", "hues",
];
