"""Handcrafted micro-expression features, vectorised numpy (and OpenCV for flow), free of
TensorFlow: each is a plain function of one clip, so feature extraction runs in worker
processes that never load TensorFlow.

    lbp        LBP-TOP (Zhao & Pietikainen 2007) equal to the Oulu `LBPTOP.m`, and
               TLCNN's RGB 6 x 6 setting (`lbp_top`, `lbp_top_tlcnn`)
    grey       MATLAB's `rgb2gray` of uint8 frames (`rgb2gray`)
"""

from tfmer.handcrafted.grey import GREY_WEIGHTS, rgb2gray
from tfmer.handcrafted.lbp import PLANES, lbp_top, lbp_top_tlcnn, uniform_mapping

__all__ = ["GREY_WEIGHTS", "PLANES", "lbp_top", "lbp_top_tlcnn", "rgb2gray",
           "uniform_mapping"]
