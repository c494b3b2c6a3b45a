"""crosspose: real-time multi-camera markerless motion capture.

Cross-view fusion of 2D heatmaps and a recursive pictorial structure model (Qiu et al., ICCV 2019),
built as a service. See DESIGN.md for the architecture and public contracts.
"""

__version__ = "0.1.0"
