"""New items at serving time with a real checkpoint: sequels that MovieLens-100K does not hold
are added to a loaded model (as POST /v1/items adds them), and a history of their series asks
for 20 candidates (SASRec's retrieved items plus the new items nearest in content); the report
gives each sequel's place in the ranking the service would answer, and whether it was a
candidate at all.

    python bench/new_item_serving.py CHECKPOINT [--fusion auto|off] [--json OUT.json]

CHECKPOINT: trained with cold.content=map (bench/cold_items.py writes such runs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from llara.config.serving import ServingConfig
from llara.inference.serving import Recommender, checkpoint_version
from llara.inference.trained import load_trained

SEQUELS = [
    ({"title": "Star Wars: Episode I - The Phantom Menace (1999)",
      "text": "Action Adventure Fantasy Sci-Fi"},
     ["Star Wars (1977)", "Empire Strikes Back, The (1980)", "Return of the Jedi (1983)"]),
    ({"title": "Toy Story 2 (1999)", "text": "Animation Children's Comedy"},
     ["Toy Story (1995)", "Aladdin (1992)", "Lion King, The (1994)"]),
    ({"title": "Mission: Impossible 2 (2000)", "text": "Action Thriller"},
     ["Mission: Impossible (1996)", "Rock, The (1996)", "Con Air (1997)"]),
    ({"title": "Scream 3 (2000)", "text": "Horror Mystery Thriller"},
     ["Scream (1996)", "I Know What You Did Last Summer (1997)", "Halloween: The Curse of "
      "Michael Myers (1995)"]),
    ({"title": "The Godfather: Part III (1990)", "text": "Action Crime Drama"},
     ["Godfather, The (1972)", "Godfather: Part II, The (1974)"]),
    ({"title": "Austin Powers: The Spy Who Shagged Me (1999)", "text": "Comedy"},
     ["Austin Powers: International Man of Mystery (1997)", "Naked Gun 33 1/3: The Final "
      "Insult (1994)", "Liar Liar (1997)"]),
]
"""(new item, a history that should lead to it): titles as MovieLens-100K's item file writes
them."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--fusion", default="auto", help="serve.fusion: auto (what the "
                        "checkpoint serves), off (the LLM alone), recommender or a weight")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        config = ServingConfig(checkpoint=str(args.checkpoint), device="cpu",
                               new_items=str(Path(scratch) / "new.jsonl"), fusion=args.fusion)
        service = Recommender(load_trained(args.checkpoint, "cpu", log=lambda *_: None), config,
                              checkpoint_version(args.checkpoint), lambda *_: None)
        ids = service.add_items([item for item, _ in SEQUELS])
        for (item, history), new in zip(SEQUELS, ids):
            query = service.parse(history, k=20)
            (ranked,) = service.rank([query])
            order = [i for i, _ in ranked]
            rows.append({"new item": item["title"], "history": history,
                         "candidate": new in query.candidates,
                         "new candidates": sum(query.origin(i)[0] == "new"
                                               for i in query.candidates),
                         "rank": order.index(new) + 1 if new in order else None,
                         "top 3": [service.titles[i] for i in order[:3]]})
    for row in rows:
        print(f"{row['new item']}: candidate {row['candidate']}, rank {row['rank']} of 20; "
              f"top 3: {row['top 3']}")
    ranks = [r["rank"] for r in rows if r["rank"]]
    print(f"{len(rows)} sequels: {sum(r == 1 for r in ranks)} ranked first, "
          f"{sum(r <= 5 for r in ranks)} in the top 5, {len(ranks)} among the candidates")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint),
                                         "fusion": args.fusion, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
