"""ABC 2.1 ↔ folk-rnn v2 tokens: reading collections, converting, checking bars, writing ABC."""
