"""What the demo visitor ``visitor_signals`` shows in "What stands out", opened at its
ticket moment: one list for the unit, integration and browser tests."""

SIGNALS_VISITOR_KINDS = [
    "last_before_contact",
    "error_page",
    "error_page",
    "repeated",
    "loop",
    "long_stay",
    "several_devices",
]
