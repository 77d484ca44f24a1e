"""Models: the ST-GCN encoder, FreST and (training-time) heads."""
from freqjax.models.batch_norm import BatchNorm
from freqjax.models.frest import FreST, SpectralFilter, frequency_mask, spectral_filter
from freqjax.models.stgcn import STGCN, STGCNBlock, count_params
