"""Networks: the LeNet-like expression CNN and the PIC autoencoder."""
