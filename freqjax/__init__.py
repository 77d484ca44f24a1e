"""freqjax: MICA (self-supervised, language-guided skeleton action recognition) in JAX."""
