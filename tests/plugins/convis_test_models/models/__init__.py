AVAILABLE_MODELS = {"interrupting_colour": "InterruptingColour"}
