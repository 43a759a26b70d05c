r"""Feature extractors that describe datasets by per-image vectors."""
from d2a.features.extractor import (FeatureExtractor, channel_stats, create_extractor,
                                    extract_features, extractor_fingerprint,
                                    extractor_to_bytes, image_features,
                                    images_to_tensor, list_extractors, load_extractor,
                                    load_extractor_file, load_extractor_from_db,
                                    register_extractor, save_extractor)
from d2a.features.raw import RawPixels
from d2a.features.small_cnn import SmallCNN, pretrain_small_cnn
from d2a.features.resnet import ResNet18ImageNet, find_resnet18_weights

__all__ = [
    'FeatureExtractor', 'channel_stats', 'create_extractor', 'extract_features',
    'extractor_fingerprint', 'extractor_to_bytes', 'image_features', 'images_to_tensor', 'list_extractors',
    'load_extractor', 'load_extractor_file', 'load_extractor_from_db', 'register_extractor',
    'save_extractor', 'RawPixels', 'SmallCNN', 'pretrain_small_cnn', 'ResNet18ImageNet',
    'find_resnet18_weights',
]
