"""MSRA named-entity recognition (chapters 02–04, 07, 10): taggers, the teacher, its students, the comparisons."""
