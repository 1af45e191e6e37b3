"""Write the shipped demo collection: an invented archipelago, in the BEIR layout.

Every passage and question is generated here from templates about places and people that do not
exist, so the collection is original to this project and free of licence questions. The output
(``components/demo/``) is committed; rerunning this script with the same seed reproduces it.

    python scripts/make_demo_collection.py [--out components/demo] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ONSETS = ["v", "m", "t", "k", "s", "l", "d", "br", "th", "c", "g", "h", "p", "r", "n", "f", "dr", "st", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ou", "ei"]
CODAS = ["", "n", "r", "l", "s", "th", "m", "nd", "rk", "st"]
FIRST = ["Ilse", "Tomas", "Marit", "Oren", "Saskia", "Benedikt", "Lior", "Agathe", "Rune", "Cosima", "Emrys",
         "Nadia", "Felix", "Hedda", "Ivo", "Josefa", "Kasimir", "Linnea", "Matthias", "Oda", "Pavel", "Quirin",
         "Rosalind", "Soren", "Theda", "Ulrich", "Vesna", "Wilhelmina", "Xaver", "Yara"]
EXPORTS = ["salted herring", "blue slate", "juniper gin", "wool blankets", "amber beads", "ship rope", "sea salt",
           "rye flour", "peat bricks", "smoked eel", "copper kettles", "seaweed paper", "goat cheese", "whale oil lamps",
           "pine tar", "oyster shells", "barley beer", "cork floats", "linen sails", "honey mead"]
DISHES = ["a stew of mussels and leeks", "barley cakes fried in butter", "pickled beetroot with dill",
          "smoked mackerel on rye", "a soup of nettles and cream", "baked apples with juniper",
          "crab dumplings", "oat porridge with sea buckthorn", "lamb roasted over seaweed", "cod cheeks in ale"]
SEASONS = ["spring", "summer", "autumn", "winter"]
LANDMARKS = ["lighthouse", "bell tower", "library", "stone bridge", "observatory", "covered market", "town hall",
             "windmill", "chapel", "harbour wall"]
ANIMALS = [("silver-backed otter", "otters"), ("marsh harrier", "hawks"), ("grey seal", "seals"),
           ("horned puffin", "seabirds"), ("dwarf red deer", "deer"), ("sand lizard", "lizards"),
           ("storm petrel", "seabirds"), ("pine marten", "martens"), ("spotted newt", "amphibians"),
           ("white hare", "hares")]


def make_name(rng: random.Random, used: set[str], syllables: int = 2) -> str:
    while True:
        name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)).capitalize()
        if name not in used and 4 <= len(name) <= 11:
            used.add(name)
            return name


def build(seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    used: set[str] = set()
    islands = [make_name(rng, used) for _ in range(5)]
    rivers = [make_name(rng, used) for _ in range(12)]
    docs: list[dict] = []
    questions: list[dict] = []

    def doc(title: str, text: str) -> str:
        doc_id = f"d{len(docs):03d}"
        docs.append({"_id": doc_id, "title": title, "text": text})
        return doc_id

    def ask(text: str, answers: list[str], doc_id: str) -> None:
        questions.append({"_id": f"q{len(questions):03d}", "text": text, "answers": answers, "doc": doc_id})

    for isl in islands:
        capital_area = rng.randint(80, 900)
        did = doc(f"{isl} Island", f"{isl} is one of the five inhabited islands of the Marrow archipelago. It covers about "
                  f"{capital_area} square kilometres of moorland, dunes and pine forest, and its coast is cut by deep, "
                  f"narrow inlets that shelter fishing villages from the western gales.")
        ask(f"How large is the island of {isl}?", [f"{capital_area} square kilometres"], did)

    for t in range(50):
        town, island, river = make_name(rng, used), rng.choice(islands), rng.choice(rivers)
        founder = f"{rng.choice(FIRST)} {make_name(rng, used)}"
        year = rng.randint(1150, 1890)
        population = rng.randint(300, 48000)
        export, dish = rng.choice(EXPORTS), rng.choice(DISHES)
        festival = f"{make_name(rng, used)} {rng.choice(['Fair', 'Regatta', 'Lantern Night', 'Feast', 'Market'])}"
        season = rng.choice(SEASONS)
        landmark = rng.choice(LANDMARKS)
        architect = f"{rng.choice(FIRST)} {make_name(rng, used)}"
        built = rng.randint(year + 10, 1990)
        ferry_minutes = rng.randint(15, 240)
        port = rng.choice([i for i in islands if i != island])

        geo = doc(town, rng.choice([
            f"{town} is a town on {island}, built where the river {river} meets the sea. About {population:,} people live there.",
            f"The town of {town} lies on the banks of the {river} on {island}. Its population is roughly {population:,}.",
        ]) + " Most houses are of dark timber with turf roofs, and the older quarter floods in spring tides.")
        hist = doc(f"History of {town}", rng.choice([
            f"{town} was founded in {year} by {founder}, who bought the fishing rights of the estuary from the island council.",
            f"Records say {founder} established a trading post at {town} in {year}; it received its town charter a generation later.",
        ]) + " Raids and two great fires destroyed much of the early settlement, which was rebuilt in stone.")
        econ = doc(f"Economy of {town}", rng.choice([
            f"The economy of {town} rests on {export}, shipped from its quay to the mainland every week.",
            f"Merchants in {town} have traded in {export} for centuries, and the trade still employs a third of the town.",
        ]) + f" A ferry crosses to {port} in about {ferry_minutes} minutes.")
        cult = doc(f"Culture of {town}", rng.choice([
            f"Every {season} {town} holds the {festival}, when the harbour is lit and boats are blessed.",
            f"The {festival} is the great celebration of {town}, held each {season} since the town's first charter.",
        ]) + f" The local dish served at the festival is {dish}.")
        land = doc(f"The {town} {landmark}", rng.choice([
            f"The {landmark} of {town} was designed by the architect {architect} and completed in {built}.",
            f"Completed in {built} to plans by {architect}, the {landmark} is the best known building in {town}.",
        ]) + " Visitors can climb to the top on weekdays for a view across the archipelago.")

        pool = [
            (f"In which year was {town} founded?", [str(year)], hist),
            (f"Who founded the settlement of {town}?", [founder], hist),
            (f"What product is the economy of {town} based on?", [export], econ),
            (f"Which river flows through {town}?", [river], geo),
            (f"What celebration takes place in {town} every {season}?", [festival], cult),
            (f"Who was the architect of the {landmark} in {town}?", [architect], land),
            (f"When was the {landmark} in {town} finished?", [str(built)], land),
            (f"Which island can you reach by ferry from {town}?", [port], econ),
        ]
        for text, answers, did in rng.sample(pool, 2):
            ask(text, answers, did)

    for species, group in ANIMALS:
        where = rng.choice(islands)
        count = rng.randint(40, 5000)
        did = doc(f"The {species}", f"The {species} is found only on {where}, where a survey counted about {count} animals. "
                  f"Like other {group} of the archipelago it is protected, and its breeding grounds are closed to visitors.")
        ask(f"On which island does the {species} live?", [where], did)
    return docs, questions


def write(out: Path, docs: list[dict], questions: list[dict], seed: int) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    rng = random.Random(seed + 1)
    test = set(rng.sample(range(len(questions)), len(questions) // 3))
    splits = {"train": [], "test": []}
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, q in enumerate(questions):
            f.write(json.dumps({"_id": q["_id"], "text": q["text"], "answers": q["answers"]}, ensure_ascii=False) + "\n")
            splits["test" if i in test else "train"].append(f"{q['_id']}\t{q['doc']}\t1\n")
    for split, rows in splits.items():
        (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows), encoding="utf-8")
    meta = {"name": "demo", "documents": len(docs), "queries": len(questions),
            "splits": {s: len(r) for s, r in splits.items()}, "generator": f"scripts/make_demo_collection.py --seed {seed}"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "components" / "demo")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    docs, questions = build(args.seed)
    write(args.out, docs, questions, args.seed)
    print(f"wrote {len(docs)} passages and {len(questions)} questions to {args.out}")


if __name__ == "__main__":
    main()
