"""The numbers of the rules (``docs/input-format.md``), each written once.

This module owns the limits every layer tests against: the player counts, the starting
piles by player count, the gold pile, the 10-token limit, the pile a take-2 needs, the
reserved-card limit and the winning score. It imports nothing of the project, so the game, the log format, the reader's
row checks and the preprocessing job all take these values from here.

>>> TOKENS_PER_COLOUR[2], MAX_COLOUR_TOKENS, MAX_TOKENS, TAKE2_MIN_PILE, MAX_RESERVED
(4, 7, 10, 4, 3)
"""

from __future__ import annotations

#: Tokens of each of the five colours in the bank at the start, by player count.
TOKENS_PER_COLOUR = {2: 4, 3: 5, 4: 7}
#: The player counts of a game.
PLAYER_COUNTS = tuple(TOKENS_PER_COLOUR)
#: Gold tokens in the bank at the start, whatever the player count.
GOLD_TOKENS = 5
#: The most tokens of one colour that exist (the 4-player pile).
MAX_COLOUR_TOKENS = max(TOKENS_PER_COLOUR.values())
#: The most tokens a player may hold at the end of a turn.
MAX_TOKENS = 10
#: A take-2 needs at least this many tokens in the colour's pile.
TAKE2_MIN_PILE = 4
#: The most cards a player may hold reserved.
MAX_RESERVED = 3
#: Points that trigger the final round.
WINNING_POINTS = 15
