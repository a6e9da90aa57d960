"""Pure library code of ConViS-Eval: concepts, data loading, parsing, metrics, video input."""
