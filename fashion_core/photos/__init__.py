"""Real photos: the pipeline that makes an upload look like Fashion-MNIST (pipeline), labelled photo
folders and their train and holdout slices (folders), unsure thresholds picked on a holdout slice
(thresholds) and the default photo model (selection)."""
