"""The benchmark app: a jobbench app whose jobs cost (next to) nothing, to measure the engine."""
