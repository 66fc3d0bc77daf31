"""The paper's reported numbers, in one place, shown beside ours in every report.

Tian Luan, "Facial expression classification and progressive image compression technology
application based on SFEW database". Values are transcribed as printed (including its typos:
the sweep table repeats the train loss as the test loss).
"""

# Section 2.2: channel sweep, 700 epochs, mean of 5 runs. Keys are (conv1, conv2) channels.
CHANNEL_SWEEP = {
    (16, 32): {"train_loss": 0.12, "train_accuracy": 0.9901, "test_loss": 0.12, "test_accuracy": 0.3669},
    (12, 24): {"train_loss": 0.28, "train_accuracy": 0.9783, "test_loss": 0.28, "test_accuracy": 0.3328},
    (20, 40): {"train_loss": 0.11, "train_accuracy": 0.9980, "test_loss": 0.11, "test_accuracy": 0.3232},
    (6, 12): {"train_loss": 0.71, "train_accuracy": 0.8401, "test_loss": 0.71, "test_accuracy": 0.2721},
}

# Section 3.1: progressive reduction of the 11-10-11 autoencoder (min angle in degrees).
PIC_TABLE = [
    {"hidden_units": 9, "loss": 0.0064, "min_angle": 0.15},
    {"hidden_units": 8, "loss": 0.0198, "min_angle": 0.197},
    {"hidden_units": 7, "loss": 0.0549, "min_angle": 0.61},
    {"hidden_units": 6, "loss": 0.105, "min_angle": 1.08},
    {"hidden_units": 5, "loss": 0.16, "min_angle": 1.76},
    {"hidden_units": 4, "loss": 0.32, "min_angle": 9.07},
    {"hidden_units": 3, "loss": 0.53, "min_angle": 18.54},
    {"hidden_units": 2, "loss": 0.569, "min_angle": 62.64},
]
PIC_TEST_LOSS = 0.1523

# Section 3.2: one training run of the (16, 32) network, 700 epochs ("Initial" is epoch 0).
TRAINING_LOG = [
    {"epoch": 0, "train_loss": 1.9478, "train_accuracy": 0.1660},
    {"epoch": 100, "train_loss": 1.8552, "train_accuracy": 0.2253},
    {"epoch": 200, "train_loss": 1.5861, "train_accuracy": 0.4348},
    {"epoch": 300, "train_loss": 1.1564, "train_accuracy": 0.6601},
    {"epoch": 400, "train_loss": 0.8196, "train_accuracy": 0.8043},
    {"epoch": 500, "train_loss": 0.5781, "train_accuracy": 0.8913},
    {"epoch": 600, "train_loss": 0.4056, "train_accuracy": 0.9367},
    {"epoch": 700, "train_loss": 0.2831, "train_accuracy": 0.9704},
]
TRAINING_TEST_ACCURACY = 0.378698224852071  # = 64/169: the paper's split was most likely 25 %

# Section 3.3: importance pruning of conv1 kernels.
PRUNING_TABLE = [
    {"pruned": 0, "train_loss": 0.2831, "train_accuracy": 0.9704, "min_importance": 0.528},
    {"pruned": 1, "train_loss": 0.2831, "train_accuracy": 0.9704, "min_importance": 0.579},
    {"pruned": 2, "train_loss": 0.2831, "train_accuracy": 0.9704, "min_importance": 0.7116},
    {"pruned": 3, "train_loss": 0.3295, "train_accuracy": 0.9526, "min_importance": 0.7119},
    {"pruned": 4, "train_loss": 0.5569, "train_accuracy": 0.8182, "min_importance": 0.7413},
]
PRUNING_TEST = {"test_loss": 0.2841, "test_accuracy": 0.3432}  # 58/169
PRUNING_MAX_LOSS_INCREASE = 0.1
