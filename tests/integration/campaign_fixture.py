"""
campaign_fixture.py: a database of many customers for the campaign tests
(test_campaign_view.py, test_campaign_start.py) and
bench/campaign_stall.py: the seed program with unregistered customers
allowed, a marketer "m", and `n` customers imported with a card each
(`kopilka import --cards --customers`, the fast way to make thousands).
"""
import json
import os
import time

import harness

PASSWORD = "correct horse battery"


def customers(k, n, prefix):
    """Loads the program, adds the marketer and imports `n` customers into
    k's database (the server not started): cards PREFIX00000000 and up.
    Returns the import's seconds."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {"unregistered": {"earn": True, "burn": True},
                        "consent_version": "2026-01"}
    prog = os.path.join(k.dir, "program-campaigns.json")
    with open(prog, "w") as f:
        json.dump(doc, f)
    harness.run_cli(["program", "load", k.db, prog])
    pw = os.path.join(k.dir, "password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    harness.run_cli(["staff", "add", k.db, "--login", "m", "--role", "marketer",
                     "--password-file", pw])
    cards = os.path.join(k.dir, "campaign-cards.csv")
    people = os.path.join(k.dir, "campaign-customers.csv")
    with open(cards, "w") as c, open(people, "w") as p:
        c.write("number,state\n")
        p.write("external_id,cards,full_name,consent_version\n")
        for i in range(n):
            c.write("%s%08d,issued\n" % (prefix, i))
            p.write("X%d,%s%08d,Customer %d,2026-01\n" % (i, prefix, i, i))
    t0 = time.monotonic()
    harness.run_cli(["import", k.db, "--cards", cards, "--customers", people])
    return time.monotonic() - t0


def start(k, env):
    """Starts k's server (--tick 1) with `env` added to the environment;
    returns the marketer's token."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        k.start(serve_args=["--tick", "1"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return k.staff_token("m", PASSWORD)
