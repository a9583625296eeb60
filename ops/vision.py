"""Vision ops: detection, region pooling, sampling grids."""
