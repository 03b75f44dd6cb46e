"""Arithmetic word problems with worked answers, in GSM8K format, written by this project.

    .venv/bin/python -m benchmarks.word_problems --count 400 --seed 1 --out datasets/word_problems_train.jsonl

Each problem is ``{"question": ..., "answer": ...}``; the answer is a few lines of
arithmetic, each computed here, and ends with ``#### N`` (a non-negative integer), as in
GSM8K. Ten templates (shopping, rates, sharing, ages, savings, travel, baking, discounts,
garden rows, split bills) with varied names, objects and numbers. The same ``seed`` always
gives the same problems; ``exclude`` keeps questions of another split out, so train and
test sets never share a question.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Collection
from pathlib import Path

from benchmarks.cli_types import output_file

NAMES = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jonas",
         "Kira", "Liam", "Maya", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara",
         "Uma", "Victor", "Wen", "Yusuf", "Zoe"]
GOODS = ["pencils", "notebooks", "apples", "candles", "stickers", "mugs", "socks", "books",
         "oranges", "batteries", "plates", "markers"]
FRUITS = ["apples", "plums", "cherries", "strawberries", "grapes", "peaches", "walnuts"]
VEHICLES = ["train", "bus", "car", "truck", "ferry", "cyclist"]
THINGS = ["bicycle", "guitar", "tent", "camera", "jacket", "lamp", "backpack", "watch"]
PLANTS = ["tomato", "pepper", "lettuce", "bean", "carrot", "rose", "tulip"]

Problem = tuple[str, list[str], int]   # question, worked lines, final answer


def _shopping(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    first, second = rng.sample(GOODS, 2)
    a, p, b, q = rng.randint(2, 9), rng.randint(2, 15), rng.randint(2, 9), rng.randint(1, 12)
    x, y = a * p, b * q
    question = (f"{name} buys {a} {first} at {p} dollars each and {b} {second} at {q} dollars "
                f"each. How many dollars does {name} spend in all?")
    lines = [f"The {first} cost {a} * {p} = {x} dollars.",
             f"The {second} cost {b} * {q} = {y} dollars.",
             f"In all {name} spends {x} + {y} = {x + y} dollars."]
    return question, lines, x + y


def _typing_rate(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    rate, morning, afternoon = rng.randint(20, 90), rng.randint(5, 40), rng.randint(5, 40)
    minutes = morning + afternoon
    question = (f"{name} types {rate} words per minute. {name} types for {morning} minutes in "
                f"the morning and {afternoon} minutes in the afternoon. How many words does "
                f"{name} type in total?")
    lines = [f"{name} types for {morning} + {afternoon} = {minutes} minutes.",
             f"That is {rate} * {minutes} = {rate * minutes} words."]
    return question, lines, rate * minutes


def _sharing(rng: random.Random) -> Problem:
    name, fruit = rng.choice(NAMES), rng.choice(FRUITS)
    friends, each = rng.randint(2, 8), rng.randint(3, 12)
    eaten = rng.randint(1, each - 1)
    total = friends * each
    question = (f"{name} picks {total} {fruit} and shares them equally among {friends} friends. "
                f"Each friend then eats {eaten} {fruit}. How many {fruit} does each friend have left?")
    lines = [f"Each friend gets {total} / {friends} = {each} {fruit}.",
             f"Each friend has {each} - {eaten} = {each - eaten} {fruit} left."]
    return question, lines, each - eaten


def _ages(rng: random.Random) -> Problem:
    older, younger = rng.sample(NAMES, 2)
    gap, age, years = rng.randint(2, 30), rng.randint(3, 50), rng.randint(2, 20)
    now = age + gap
    question = (f"{older} is {gap} years older than {younger}. {younger} is {age} years old. "
                f"How old will {older} be in {years} years?")
    lines = [f"{older} is {age} + {gap} = {now} years old now.",
             f"In {years} years {older} will be {now} + {years} = {now + years} years old."]
    return question, lines, now + years


def _savings(rng: random.Random) -> Problem:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    weekly, weeks = rng.randint(5, 60), rng.randint(3, 20)
    saved = weekly * weeks
    spent = rng.randint(1, saved - 1)
    question = (f"{name} saves {weekly} dollars every week for {weeks} weeks, then spends "
                f"{spent} dollars on a {thing}. How many dollars does {name} have left?")
    lines = [f"{name} saves {weekly} * {weeks} = {saved} dollars.",
             f"After buying the {thing}, {name} has {saved} - {spent} = {saved - spent} dollars left."]
    return question, lines, saved - spent


def _travel(rng: random.Random) -> Problem:
    vehicle = rng.choice(VEHICLES)
    v, t, u, t2 = rng.randint(10, 90), rng.randint(1, 6), rng.randint(10, 90), rng.randint(1, 6)
    x, y = v * t, u * t2
    question = (f"A {vehicle} travels at {v} km per hour for {t} hours and then at {u} km per "
                f"hour for {t2} hours. How many kilometres does it travel in total?")
    lines = [f"First it travels {v} * {t} = {x} km.",
             f"Then it travels {u} * {t2} = {y} km.",
             f"In total it travels {x} + {y} = {x + y} km."]
    return question, lines, x + y


def _baking(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    trays, per_tray = rng.randint(2, 9), rng.randint(6, 24)
    baked = trays * per_tray
    given = rng.randint(1, baked - 1)
    question = (f"{name} bakes {trays} trays of cookies with {per_tray} cookies on each tray. "
                f"{name} gives {given} cookies to the neighbours. How many cookies are left?")
    lines = [f"{name} bakes {trays} * {per_tray} = {baked} cookies.",
             f"{baked} - {given} = {baked - given} cookies are left."]
    return question, lines, baked - given


def _discount(rng: random.Random) -> Problem:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    price, percent, count = 20 * rng.randint(1, 15), rng.choice([10, 20, 25, 50]), rng.randint(2, 5)
    off = price * percent // 100
    sale = price - off
    question = (f"A {thing} costs {price} dollars. It is on sale for {percent}% off. {name} "
                f"buys {count} of them at the sale price. How many dollars does {name} pay?")
    lines = [f"The discount is {price} * {percent} / 100 = {off} dollars.",
             f"The sale price is {price} - {off} = {sale} dollars.",
             f"{name} pays {sale} * {count} = {sale * count} dollars."]
    return question, lines, sale * count


def _garden(rng: random.Random) -> Problem:
    name, plant = rng.choice(NAMES), rng.choice(PLANTS)
    rows, per_row, more = rng.randint(2, 12), rng.randint(3, 15), rng.randint(1, 8)
    all_rows = rows + more
    question = (f"A garden has {rows} rows with {per_row} {plant} plants in each row. {name} "
                f"plants {more} more rows of the same size. How many {plant} plants are there now?")
    lines = [f"There are {rows} + {more} = {all_rows} rows.",
             f"There are {all_rows} * {per_row} = {all_rows * per_row} plants."]
    return question, lines, all_rows * per_row


def _split_bill(rng: random.Random) -> Problem:
    friends, share, tip = rng.randint(2, 8), rng.randint(8, 40), rng.randint(1, 9)
    bill = friends * share
    question = (f"{friends} friends share a bill of {bill} dollars equally, and each also leaves "
                f"a tip of {tip} dollars. How many dollars does each friend pay?")
    lines = [f"Each share of the bill is {bill} / {friends} = {share} dollars.",
             f"With the tip each friend pays {share} + {tip} = {share + tip} dollars."]
    return question, lines, share + tip


TEMPLATES: list[Callable[[random.Random], Problem]] = [
    _shopping, _typing_rate, _sharing, _ages, _savings, _travel, _baking, _discount, _garden,
    _split_bill,
]


def generate_problems(count: int, seed: int, exclude: Collection[str] = ()) -> list[dict]:
    """``count`` distinct problems for ``seed``, none whose question is in ``exclude``.

    Templates take turns in a shuffled order, so every template is about equally common.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    seen = set(exclude)
    problems: list[dict] = []
    attempts = 0
    while len(problems) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise ValueError(f"could not find {count} distinct problems for seed {seed}")
        template = TEMPLATES[(len(problems) + seed) % len(TEMPLATES)]
        question, lines, answer = template(rng)
        if question in seen:
            continue
        seen.add(question)
        problems.append({"question": question, "answer": "\n".join(lines + [f"#### {answer}"])})
    return problems


def read_questions(path: Path) -> set[str]:
    """The questions of a GSM8K-format JSON Lines file."""
    return {json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write arithmetic word problems (GSM8K format).")
    parser.add_argument("--count", type=int, required=True, help="number of problems")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", type=output_file, required=True, help="output .jsonl file")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="a .jsonl file whose questions must not appear (repeatable)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    excluded: set[str] = set()
    for path in args.exclude:
        if not path.is_file():
            parser.error(f"--exclude: no such file {path}")
        excluded |= read_questions(path)
    problems = generate_problems(args.count, args.seed, excluded)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for problem in problems:
            handle.write(json.dumps(problem) + "\n")
    print(f"wrote {len(problems)} problems to {args.out}")


if __name__ == "__main__":
    main()
