"""The same classifier in PyTorch (NCHW), weights copied from Flax params: the baseline a
LeRobot user would run. Benchmarks only; written from hil-serl-classifier.md §1."""
from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hil_serl_reward.model.resnet_v1 import IMAGENET_MEAN, IMAGENET_STD


def conv_same(x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    """XLA 'SAME' padding: for stride 2 on even sizes it pads 0 before and 1 after."""
    k = weight.shape[-1]
    size = x.shape[-1]
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2
    x = F.pad(x, (before, total - before, before, total - before))
    return F.conv2d(x, weight, stride=stride)


class TorchClassifier(torch.nn.Module):
    def __init__(self, params: Dict, image_keys: Sequence[str], device: str = 'cpu') -> None:
        super().__init__()
        self.keys = list(image_keys)
        t = lambda a: torch.from_numpy(np.asarray(a, np.float32).copy()).to(device)  # noqa: E731
        self.mean = t(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = t(IMAGENET_STD).view(1, 3, 1, 1)
        owner = min(self.keys)
        bb = params['encoder_def'][f'encoder_{owner}']['pretrained_encoder']
        self.conv_init = t(np.transpose(bb['conv_init']['kernel'], (3, 2, 0, 1)))
        self.norm_init = (t(bb['norm_init']['scale']), t(bb['norm_init']['bias']))
        self.blocks = []
        for i in range(4):
            b = bb[f'ResNetBlock_{i}']
            block = {
                'conv0': t(np.transpose(b['Conv_0']['kernel'], (3, 2, 0, 1))),
                'norm0': (t(b['MyGroupNorm_0']['scale']), t(b['MyGroupNorm_0']['bias'])),
                'conv1': t(np.transpose(b['Conv_1']['kernel'], (3, 2, 0, 1))),
                'norm1': (t(b['MyGroupNorm_1']['scale']), t(b['MyGroupNorm_1']['bias'])),
                'stride': 2 if i else 1,
            }
            if 'conv_proj' in b:
                block['proj'] = t(np.transpose(b['conv_proj']['kernel'], (3, 2, 0, 1)))
                block['norm_proj'] = (t(b['norm_proj']['scale']), t(b['norm_proj']['bias']))
            self.blocks.append(block)
        self.heads = {}
        for key in self.keys:
            e = params['encoder_def'][f'encoder_{key}']
            self.heads[key] = {
                'sle': t(e['SpatialLearnedEmbeddings_0']['kernel']),      # (H, W, C, F)
                'dense': (t(e['Dense_0']['kernel']), t(e['Dense_0']['bias'])),
                'ln': (t(e['LayerNorm_0']['scale']), t(e['LayerNorm_0']['bias'])),
            }
        self.dense0 = (t(params['Dense_0']['kernel']), t(params['Dense_0']['bias']))
        self.ln0 = (t(params['LayerNorm_0']['scale']), t(params['LayerNorm_0']['bias']))
        self.dense1 = (t(params['Dense_1']['kernel']), t(params['Dense_1']['bias']))

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255.0 - self.mean) / self.std
        x = F.conv2d(F.pad(x, (3, 3, 3, 3)), self.conv_init, stride=2)
        x = F.relu(F.group_norm(x, 4, *self.norm_init, eps=1e-5))
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float('-inf')), 3, stride=2)
        for b in self.blocks:
            y = F.relu(F.group_norm(conv_same(x, b['conv0'], b['stride']), 4, *b['norm0'],
                                    eps=1e-5))
            y = F.group_norm(conv_same(y, b['conv1'], 1), 4, *b['norm1'], eps=1e-5)
            if 'proj' in b:
                x = F.group_norm(F.conv2d(x, b['proj'], stride=b['stride']), 4, *b['norm_proj'],
                                 eps=1e-5)
            x = F.relu(x + y)
        return x

    def forward(self, images: Dict[str, torch.Tensor]) -> torch.Tensor:
        """images[key]: (B, H, W, 3) uint8 NHWC, as the node holds them."""
        encoded = []
        for key in self.keys:
            h = self.heads[key]
            x = self.backbone(images[key].permute(0, 3, 1, 2))
            x = torch.einsum('bchw,hwcf->bcf', x, h['sle']).reshape(x.shape[0], -1)
            x = x @ h['dense'][0] + h['dense'][1]
            encoded.append(torch.tanh(F.layer_norm(x, (x.shape[-1],), *h['ln'], eps=1e-6)))
        x = torch.cat(encoded, dim=-1) @ self.dense0[0] + self.dense0[1]
        x = F.relu(F.layer_norm(x, (x.shape[-1],), *self.ln0, eps=1e-6))
        return x @ self.dense1[0] + self.dense1[1]
