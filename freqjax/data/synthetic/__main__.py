"""`python -m freqjax.data.synthetic --out DIR`: writes the synthetic dataset."""
from freqjax.data.synthetic import files

if __name__ == "__main__":
  files.main()
