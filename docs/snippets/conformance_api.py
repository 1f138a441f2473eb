# Check a Square-compatible server against the rules from Python. Here the server under test is
# a simulator that follows the stricter reading of a disputed rule.
from orderfsm.conformance import detect_variants, run
from orderfsm.simulator import running

with running(variants={"cancel_after_payment": "never"}) as base_url:
    # 1. Which side of each disputed rule does the server take?
    found = detect_variants(base_url, "sandbox-token")
    print(found.variants["cancel_after_payment"])  # never

    # 2. Random call sequences, compared step by step with an oracle that follows the same
    #    variants. A difference would come back shrunk to a minimal script.
    report = run(base_url, "sandbox-token", examples=20, seed=1, variants=found.variants)
    assert report.ok, report.divergences[0].snippet
    print(f"{report.examples_run} sequences, {len(report.rules)} rules checked, no divergence")
