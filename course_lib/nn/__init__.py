"""Models only, no training (chapters 02–04): attention, positional encodings, the Transformer, the MLP, the BiLSTM, the language model."""
