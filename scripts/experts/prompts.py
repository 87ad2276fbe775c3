"""Build the prompt sets for the demo experts: templates x topics.

Run directly to write the held-out prompts that bench/eval_experts.py reads:

    .venv/bin/python scripts/experts/prompts.py [--heldout examples/experts/heldout_prompts.json]

Every category has training topics and training templates, plus held-out
topics and held-out templates. A held-out prompt combines a held-out topic with
a held-out template, so no held-out topic or template wording ever reaches
training. The template choice is seeded, so the sets are the same on every run.
"""

import argparse
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HELDOUT = REPO / "examples" / "experts" / "heldout_prompts.json"
SEED = 1234
TEMPLATES_PER_TRAINING_TOPIC = 3

# Generic templates for "a concept". Categories below reuse them where they fit.
CONCEPT_TEMPLATES = [
    "What is {x}?",
    "Explain {x} in simple terms.",
    "Tell me about {x}.",
    "Why is {x} important?",
    "Give me a fun fact about {x}.",
    "How would you describe {x} to a beginner?",
]
CONCEPT_HELDOUT_TEMPLATES = [
    "I keep hearing about {x}. What does that mean?",
    "Could you summarize what {x} is?",
]

CATEGORIES = {
    "science": {
        "templates": CONCEPT_TEMPLATES + ["How does {x} work?"],
        "heldout_templates": CONCEPT_HELDOUT_TEMPLATES,
        "topics": [
            "photosynthesis", "gravity", "the water cycle", "black holes", "DNA", "volcanoes",
            "magnetism", "rainbows", "electricity", "atoms", "earthquakes", "the phases of the moon",
            "evolution", "vaccines", "climate change", "the speed of light", "sound waves", "friction",
            "the periodic table", "cells", "oxygen", "stars", "ocean tides", "clouds", "fossils",
        ],
        "heldout_topics": ["plate tectonics", "the immune system", "nuclear fusion", "lightning"],
    },
    "history": {
        "templates": [
            "Tell me about {x}.", "What was {x}?", "Why was {x} important?",
            "Give me a fun fact about {x}.", "What should everyone know about {x}?",
        ],
        "heldout_templates": ["What is the story of {x}?", "What changed because of {x}?"],
        "topics": [
            "the Roman Empire", "the printing press", "the French Revolution", "the Industrial Revolution",
            "ancient Egypt", "the Renaissance", "World War I", "the Great Wall of China", "the Cold War",
            "the Silk Road", "the Moon landing", "the Vikings", "the American Revolution",
            "the Ottoman Empire", "the invention of the telephone", "ancient Greece", "the Aztecs",
            "the fall of the Berlin Wall",
        ],
        "heldout_topics": ["the Magna Carta", "the Black Death", "the Mongol Empire", "the Wright brothers' first flight"],
    },
    "cooking": {
        "templates": [
            "How do I {x}?", "What is the best way to {x}?", "Give me tips to {x}.",
            "What do I need to {x}?", "What mistakes should I avoid when I {x}?",
        ],
        "heldout_templates": ["Walk me through how to {x}.", "I want to {x}. Where should I start?"],
        "topics": [
            "boil an egg", "bake bread", "make pancakes", "cook rice", "make a salad", "grill vegetables",
            "make tomato soup", "brew coffee", "make scrambled eggs", "roast a chicken", "make pasta sauce",
            "bake cookies", "make guacamole", "steam broccoli", "make a smoothie", "cook oatmeal",
        ],
        "heldout_topics": ["make French toast", "cook quinoa", "make lemonade", "poach an egg"],
    },
    "programming": {
        "templates": CONCEPT_TEMPLATES + ["When should a programmer use {x}?"],
        "heldout_templates": CONCEPT_HELDOUT_TEMPLATES,
        "topics": [
            "a variable", "recursion", "a for loop", "a Python list", "a function", "an API",
            "object-oriented programming", "a database", "version control", "a compiler", "an array",
            "a hash table", "unit testing", "an algorithm", "a class in Python", "JSON", "HTML",
            "a linked list", "binary numbers", "a software bug",
        ],
        "heldout_topics": ["a stack", "a pointer", "garbage collection", "a regular expression"],
    },
    "geography": {
        "templates": [
            "What is the capital of {x}?", "Tell me about the geography of {x}.",
            "What language is spoken in {x}?", "What is {x} famous for?", "What is the population of {x}?",
        ],
        "heldout_templates": ["Where is {x} located?", "What is the climate like in {x}?"],
        "topics": [
            "France", "Japan", "Brazil", "Canada", "Egypt", "Australia", "India", "Italy", "Mexico",
            "Kenya", "Norway", "Spain", "China", "Germany", "Peru", "Greece",
        ],
        "heldout_topics": ["Argentina", "Vietnam", "Morocco", "Iceland"],
    },
    "advice": {
        "templates": [
            "How can I {x}?", "Give me advice on how to {x}.", "What are some ways to {x}?",
            "What is a good first step to {x}?", "What habits help people {x}?",
        ],
        "heldout_templates": ["Any tips for someone who wants to {x}?", "I struggle to {x}. What can I do?"],
        "topics": [
            "sleep better", "study for exams", "save money", "stay focused", "make new friends",
            "reduce stress", "learn a new language", "get fit", "manage my time",
            "prepare for a job interview", "drink more water", "read more books", "be more productive",
            "stay motivated",
        ],
        "heldout_topics": ["wake up earlier", "speak in public with confidence", "keep houseplants alive", "stop procrastinating"],
    },
    "definitions": {
        "templates": [
            'What does "{x}" mean?', "Define {x}.", 'What is the meaning of the word "{x}"?',
            'How is the word "{x}" used?',
        ],
        "heldout_templates": ['Explain the word "{x}" to a child.', 'What is a simple definition of "{x}"?'],
        "topics": [
            "ephemeral", "ubiquitous", "resilience", "empathy", "democracy", "inflation", "metaphor",
            "irony", "nostalgia", "paradox", "entropy", "biodiversity", "sustainability", "curiosity",
            "ethics", "renewable energy",
        ],
        "heldout_topics": ["serendipity", "ambiguous", "altruism", "hypothesis"],
    },
    "animals": {
        "templates": [
            "Tell me something interesting about {x}.", "Where do {x} live?", "What do {x} eat?",
            "Why are {x} important?", "How long do {x} live?",
        ],
        "heldout_templates": ["How do {x} communicate?", "What makes {x} special?"],
        "topics": [
            "dolphins", "elephants", "bees", "penguins", "octopuses", "owls", "wolves", "cats", "dogs",
            "sharks", "butterflies", "camels", "frogs", "eagles",
        ],
        "heldout_topics": ["giraffes", "bats", "turtles", "ants"],
    },
    "technology": {
        "templates": CONCEPT_TEMPLATES + ["How does {x} work?"],
        "heldout_templates": CONCEPT_HELDOUT_TEMPLATES,
        "topics": [
            "the internet", "smartphones", "artificial intelligence", "solar panels", "electric cars",
            "GPS", "Wi-Fi", "3D printing", "cloud computing", "robots", "batteries", "email",
        ],
        "heldout_topics": ["blockchain", "virtual reality", "satellites", "a microwave oven"],
    },
    "health": {
        "templates": CONCEPT_TEMPLATES + ["How can I take care of {x}?"],
        "heldout_templates": ["What does {x} do in the body?", "How can someone keep {x} healthy?"],
        "topics": ["the heart", "the brain", "vitamin C", "a balanced diet", "the lungs", "muscles", "the skin", "blood"],
        "heldout_topics": ["the liver", "the kidneys"],
    },
    "math": {
        "templates": CONCEPT_TEMPLATES + ["How do I use {x}?"],
        "heldout_templates": CONCEPT_HELDOUT_TEMPLATES,
        "topics": [
            "prime numbers", "fractions", "percentages", "the Pythagorean theorem", "pi", "probability",
            "algebra", "geometry", "negative numbers", "the average of a set of numbers", "multiplication",
            "a square root",
        ],
        "heldout_topics": ["a logarithm", "symmetry"],
    },
    "arts and sports": {
        "templates": [
            "Tell me about {x}.", "How do I get started with {x}?", "Why do people enjoy {x}?",
            "Give me a fun fact about {x}.", "What is the history of {x}?",
        ],
        "heldout_templates": ["What do beginners get wrong about {x}?", "What is special about {x}?"],
        "topics": [
            "soccer", "chess", "the guitar", "jazz", "painting", "the Olympic Games", "basketball",
            "poetry", "ballet", "photography",
        ],
        "heldout_topics": ["tennis", "the piano"],
    },
}


def _first_upper(text):
    return text[0].upper() + text[1:]


def build_prompts():
    """Return (training, heldout), two lists of {"category", "topic", "template", "prompt"}.

    Each training topic gets TEMPLATES_PER_TRAINING_TOPIC of its category's
    training templates, and each held-out topic gets one held-out template,
    alternating through the category's held-out templates.
    """
    rng = random.Random(SEED)
    training, heldout = [], []
    for category, spec in CATEGORIES.items():
        for topic in spec["topics"]:
            for template in rng.sample(spec["templates"], TEMPLATES_PER_TRAINING_TOPIC):
                training.append({
                    "category": category, "topic": topic, "template": template,
                    "prompt": _first_upper(template.format(x=topic)),
                })
        for index, topic in enumerate(spec["heldout_topics"]):
            template = spec["heldout_templates"][index % len(spec["heldout_templates"])]
            heldout.append({
                "category": category, "topic": topic, "template": template,
                "prompt": _first_upper(template.format(x=topic)),
            })
    _check_disjoint(training, heldout)
    return training, heldout


def _check_disjoint(training, heldout):
    training_topics = {item["topic"] for item in training}
    training_templates = {item["template"] for item in training}
    for item in heldout:
        if item["topic"] in training_topics or item["template"] in training_templates:
            raise ValueError(f"held-out prompt {item['prompt']!r} shares a topic or template with training")
    prompts = [item["prompt"] for item in training]
    if len(prompts) != len(set(prompts)):
        raise ValueError("training prompts contain duplicates")


def write_heldout(path=DEFAULT_HELDOUT):
    _, heldout = build_prompts()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(heldout, indent=1, ensure_ascii=False) + "\n")
    return heldout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT, help="output JSON file for the held-out prompts")
    args = parser.parse_args()
    training, _ = build_prompts()
    heldout = write_heldout(args.heldout)
    print(f"{len(training)} training prompts, {len(heldout)} held-out prompts written to {args.heldout}")


if __name__ == "__main__":
    main()
