"""Question answering as span extraction over MSRA (chapter 09): questions, spans, and the teacher–student comparison."""
