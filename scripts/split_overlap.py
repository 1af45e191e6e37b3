"""How much of a test split's relevance the training questions already cover.

Stage 2 moves the student towards the ranker on the training questions' candidate lists. Where a
test question's relevant passages are relevant to training questions too (one corpus, new questions
about it: the domain-adaptation case), what it learns there is what the test asks; where the test
concerns passages no training question is about (SQuAD split by article), it must generalise.
This prints, per dataset, the share of test (question, relevant passage) pairs whose passage is
judged relevant to some training question: a property of the split, read before any run.

    python scripts/split_overlap.py ../shared/datasets/nfcorpus ../shared/datasets/squad-v1.1-dev
"""

from __future__ import annotations

import argparse

from components.corpus import Qrels, load_collection


def relevance_overlap(train: Qrels, test: Qrels) -> tuple[int, int]:
    """(covered, all): the test's relevant (question, passage) pairs whose passage is relevant to a
    training question, and all of the test's relevant pairs."""
    seen = {doc for judged in train.values() for doc, grade in judged.items() if grade > 0}
    pairs = [doc for judged in test.values() for doc, grade in judged.items() if grade > 0]
    return sum(doc in seen for doc in pairs), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="dataset folders (BEIR layout)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test")
    args = parser.parse_args()
    for data in args.data:
        col = load_collection(data)
        train, test = col.split(args.train_split).qrels, col.split(args.test_split).qrels
        covered, pairs = relevance_overlap(train, test)
        print(f"{data}: {covered / max(1, pairs):.3f} of {pairs} relevant test (question, passage) pairs name a passage "
              f"relevant to one of {len(train)} training questions")


if __name__ == "__main__":
    main()
