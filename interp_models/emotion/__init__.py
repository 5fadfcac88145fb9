"""Mid-level-feature emotion models (Chowdhury et al., ISMIR 2019): A2E and A2Mid2E."""
