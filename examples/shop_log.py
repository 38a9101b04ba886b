"""Write a small shop's interaction log as CSV, the shape a shop exports: the README's
walkthrough from a log to a served model starts from it.

    python examples/shop_log.py shop      # -> shop/events.csv, shop/items.csv

events.csv: customer,sku,ts,stars (ISO 8601 times); items.csv: sku,name,category. Each
customer keeps to one favourite category most of the time and buys its products roughly in
catalogue order (volume 2 after volume 1), so a recommender has something to learn. Seeded:
the same arguments write the same files.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

CATEGORIES = {
    "tea": ("Sencha", "Assam", "Darjeeling", "Oolong", "Rooibos", "Matcha", "Earl Grey",
            "Jasmine", "Chai", "Genmaicha"),
    "coffee": ("Espresso", "Colombia", "Ethiopia", "Kenya", "Sumatra", "Guatemala",
               "Decaf", "Mocha", "Brazil", "Peru"),
    "books": ("Dune", "Emma", "Ulysses", "Beloved", "Hamlet", "Walden", "Candide", "Lolita",
              "Rebecca", "Dracula"),
    "garden": ("Trowel", "Rake", "Hose", "Shears", "Gloves", "Kneeler", "Sprayer", "Spade",
               "Hoe", "Planter"),
    "music": ("Vinyl Jazz", "Vinyl Blues", "Vinyl Soul", "Vinyl Folk", "Vinyl Rock",
              "Vinyl Funk", "Vinyl Disco", "Vinyl Opera", "Vinyl Reggae", "Vinyl Punk"),
    "games": ("Chess", "Go", "Backgammon", "Mahjong", "Dominoes", "Checkers", "Shogi",
              "Cribbage", "Mancala", "Yahtzee"),
}


def shop_log(customers: int = 300, seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """(events, items): events (customer, sku, ISO time, stars), items (sku, name, category)."""
    rng = random.Random(seed)
    items, by_category = [], {}
    for category, names in CATEGORIES.items():
        for number, name in enumerate(names):
            sku = f"{category[:3].upper()}-{number + 1:03d}"
            items.append((sku, f"{name} {category.title()}", category))
            by_category.setdefault(category, []).append(sku)
    every = [sku for sku, _, _ in items]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events = []
    for customer in range(1, customers + 1):
        favourite = by_category[rng.choice(list(by_category))]
        position = rng.randrange(len(favourite) // 2)
        when = start + timedelta(hours=rng.randrange(24 * 300))
        bought: set[str] = set()
        for _ in range(rng.randint(8, 14)):
            if rng.random() < 0.8 and position < len(favourite):
                sku = favourite[position]
                position += rng.choice((1, 1, 2))
            else:
                sku = rng.choice(every)
            if sku in bought:
                continue
            bought.add(sku)
            when += timedelta(hours=rng.randint(2, 24 * 14))
            events.append((f"c-{customer}", sku, when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           rng.randint(3, 5)))
    return events, items


def write_shop(folder: Path, customers: int = 300, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    events, items = shop_log(customers, seed)
    with (folder / "events.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("customer", "sku", "ts", "stars"))
        writer.writerows(events)
    with (folder / "items.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("sku", "name", "category"))
        writer.writerows(items)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write events.csv and items.csv into")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("events.csv", "items.csv"):
        if (args.out / name).exists():
            parser.error(f"{args.out / name} exists; choose another folder")
    folder = write_shop(args.out, args.customers, args.seed)
    print(f"{folder}/events.csv and {folder}/items.csv: {args.customers} customers, "
          f"{sum(len(v) for v in CATEGORIES.values())} products")


if __name__ == "__main__":
    main()
