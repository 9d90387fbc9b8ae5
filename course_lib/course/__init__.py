"""The course around the chapters: map, runner, results, the benchmark harness, glossary, timeline, resources, checks, deck, pitfalls."""
