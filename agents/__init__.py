"""Faust agents and timers: thin edges that call the pure core and send what it returns."""
