"""Tables, figures and the summary of the paper."""
