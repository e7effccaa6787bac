"""Values Vault's Go types cannot hold, with the message OpenBao 2.7.2 gives for each
(``parseutil.ParseDurationSecond``): shared by the tests of every field that takes a duration."""

DURATION_OVERFLOW = "multiplication of durations resulted in overflow, one operand may be too large"

#: (value, message) pairs that every duration field refuses the same way.
HOSTILE_DURATIONS = [
    (1e30, 'time: unknown unit "e" in duration "1e30"'),
    ("1e30", 'time: unknown unit "e" in duration "1e30"'),
    ("1e999", 'time: unknown unit "e" in duration "1e999"'),
    ("NaN", 'time: invalid duration "NaN"'),
    ("Infinity", 'time: invalid duration "Infinity"'),
    (float("nan"), 'time: invalid duration "NaN"'),
    (float("inf"), 'time: invalid duration "+Inf"'),
    (1.5, 'time: missing unit in duration "1.5"'),
    (9223372037, DURATION_OVERFLOW),
    ("106752d", DURATION_OVERFLOW),
    ("2562048h", 'time: invalid duration "2562048h"'),
]
