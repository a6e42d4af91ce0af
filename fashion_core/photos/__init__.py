"""Real photos: the pipeline that makes an upload look like Fashion-MNIST (pipeline), labelled photo
folders and their quarters (folders), unsure thresholds picked on them (thresholds), the default
photo model (selection) and cross-validation over the quarters (cv)."""
