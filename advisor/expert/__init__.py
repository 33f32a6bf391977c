"""The expert system: rules, inference, and recommend / explain / revise over them."""
