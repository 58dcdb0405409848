"""Handcrafted micro-expression features, vectorised numpy (and OpenCV for flow), free of
TensorFlow: each is a plain function of one clip, so feature extraction runs in worker
processes that never load TensorFlow.

    lbp        LBP-TOP (Zhao & Pietikainen 2007) equal to the Oulu `LBPTOP.m`, and
               TLCNN's RGB 6 x 6 setting (`lbp_top`, `lbp_top_tlcnn`)
    stlbp_ip   STLBP-IP (Huang et al. 2015): LBP of integral projections
               (`stlbp_ip.stlbp_ip`)
    stclqp     STCLQP (Huang et al. 2016): codes per clip, k-means codebooks of training
               clips, codeword histograms (`stclqp_codes`, `fit_codebooks`,
               `stclqp_histograms`)
    slpp       supervised locality preserving projection (`SupervisedLPP`)
    mdmo       MDMO (Liu et al. 2016): main directional mean flow of 36 landmark regions
               (`flows_from_first`, `mdmo.mdmo`)
    fdm        FDM (Xu et al. 2017): the Facial Dynamics Map (`consecutive_flows`,
               `fdm.fdm`)
    biwoof     Bi-WOOF (Liong et al. 2018): bi-weighted oriented onset -> apex flow
               (`bi_woof`)
    grey       MATLAB's `rgb2gray` of uint8 frames (`rgb2gray`)
    methods    each method by name (`handcrafted.method`), what it reads of a clip, and
               the feature workers' tasks
"""

# The functions named as their modules (`fdm.fdm`, `mdmo.mdmo`, `stlbp_ip.stlbp_ip`) are
# reached through their modules, which a same-named function here would hide.
from tfmer.handcrafted.biwoof import bi_woof
from tfmer.handcrafted.fdm import consecutive_flows
from tfmer.handcrafted.grey import GREY_WEIGHTS, rgb2gray
from tfmer.handcrafted.lbp import PLANES, lbp_top, lbp_top_tlcnn, uniform_mapping
from tfmer.handcrafted.mdmo import flows_from_first
from tfmer.handcrafted.slpp import SupervisedLPP
from tfmer.handcrafted.stclqp import fit_codebooks, stclqp_codes, stclqp_histograms

__all__ = ["GREY_WEIGHTS", "PLANES", "SupervisedLPP", "bi_woof", "consecutive_flows",
           "fit_codebooks", "flows_from_first", "lbp_top", "lbp_top_tlcnn", "rgb2gray",
           "stclqp_codes", "stclqp_histograms", "uniform_mapping"]
