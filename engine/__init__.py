"""The matching engine: the assembled services, the search stages and the evidence pictures."""
