"""Generated data for the pilot and the tests, kept out of the domain packages (no domain module imports it).

scenario.py   generated Good Delivery bar lists (rows, CSV, JSON)
synthetic.py  synthetic audit ledgers appended through the real code path
"""
