"""Everything that draws (chapters 00–10): figures, explorers, widgets, the live lab, tables."""
