"""Fine-tuning (`kidsasr train`): recipe, augmentation, data, collators, encoder cache, model surgery, driver and
model card."""
