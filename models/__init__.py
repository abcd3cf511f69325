"""The spendstream domain: records, money and the rules on them, free of I/O."""
