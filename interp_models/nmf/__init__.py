"""NMF-dictionary interpreter ("Listen to Interpret", Parekh et al., NeurIPS 2022)."""
