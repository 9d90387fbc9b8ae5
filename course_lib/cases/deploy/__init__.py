"""The deployed students (chapter 08): bundles of chapters 06–07's models, their measured table, compression beside them."""
