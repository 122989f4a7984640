"""The simulator: real traces replayed into a simulated world, driving the same decision code as the live loop."""
