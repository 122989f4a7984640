"""Pure decisions: policies and the framework around them (guards, arbitration).

Nothing here does I/O, reads a clock or draws a random number: every function takes what it needs (a view of
the world, settings, its own state, `now`) and returns decisions with their reasons and its new state.
"""
