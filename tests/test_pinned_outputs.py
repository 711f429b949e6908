"""Byte-for-byte pins of synmix's outputs on small procedural sample sets.

Every command a user runs (sample → convert → stats → manifest) is run through the CLI on fixed
seeds; the sha256 of every file it writes is compared with the sums recorded here, which were
taken before the source-module redesign. A refactor that changes one byte of any output fails
this test. Absolute paths of the temporary folder are replaced by ``<BASE>`` before hashing
(COCO ``info.image_root`` and reports record where the input was), and in manifests the sha256
of those files. Reports are left out (they
hold timings); so are the histogram PNGs (matplotlib's bytes depend on its version).

To re-pin after a deliberate change of an output format: ``SYNMIX_PRINT_PINS=1 pytest -s
tests/test_pinned_outputs.py`` prints the new table; say in the commit which output changed and why.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = (
    "sample synscapes Synscapes --frames 8 --seed 11 --size 480x240 --val-fraction 0.25",
    "sample cityscapes cityscapes --frames 5 --split train --seed 12 --size 512x256",
    "sample cityscapes cityscapes --frames 3 --split val --seed 13 --size 512x256",
    "convert synscapes Synscapes --out out --split all --gtfine --workers 1 --quiet",
    "convert cityscapes cityscapes --out out --split all --workers 1 --quiet",
    "stats out --no-figures --quiet",
    "manifest out --real all --synthetic 5 --seed 3 -o manifests/mix.json --quiet",
    "manifest out --sweep prune --real 2 --synthetic 4 -o manifests/prune --quiet",
)

# Files whose bytes vary by design (timings, tool environment) or by library version.
UNPINNED_SUFFIXES = (".report.json", ".png")
UNPINNED_EXCEPT = ("_gtFine_instanceIds.png", "_gtFine_labelIds.png", "_gtFine_labelTrainIds.png")

PINS: dict[str, str] = {
    'Synscapes/img/class/1.png': '30585980c6842c4653a63a771e5e19f2ac603142d1783f6b79788423aa0c8acb',
    'Synscapes/img/class/2.png': 'd001f9288c9108f2134edcbe034ba1e034314edf8852ba841ceb4436d5bfbe3f',
    'Synscapes/img/class/20001.png': '8faaf9b3578562b1b167b445f196bbef016be326e03a12ae7646620947fe7ed0',
    'Synscapes/img/class/20002.png': '5f2c564c9fad75cc8919ccfd51df27db5e0dd2edcb217775f58e514c2bc7ee7b',
    'Synscapes/img/class/3.png': '45ce61228ef7f91174536af372075373910a1a817156a6490e3eea9af5786044',
    'Synscapes/img/class/4.png': '31ad049bd4afa776c6978f5f36df19f5c932f8d2a4c9d54cb1ee094c39939b7a',
    'Synscapes/img/class/5.png': '875e023f5e637ac84a40e7769ac5fd2cec8816cbe91b6c2578c0280a6475b2a9',
    'Synscapes/img/class/6.png': 'c65b2657d2226f7862fce76667a89bbebb2d3a56104fb34ddabd67678b108e2d',
    'Synscapes/img/instance/1.png': 'dee0aeba00ee253605e81af920f0e2ae296563e849f5d4610a098db75933aa64',
    'Synscapes/img/instance/2.png': '75416de20704382b400bef90481e6990418cebca0442378c75ff42dbe21bc1be',
    'Synscapes/img/instance/20001.png': '5e9889eec241d0e1b807fc258fcd2011e96db54316561d6ce5ec7e4c75680097',
    'Synscapes/img/instance/20002.png': 'c31f277b477108e03490376eec2182fc4ab054579fc0b9b151663c4c2f620349',
    'Synscapes/img/instance/3.png': '5bbf3d2c358887a0a40333bef0c55cbb0214be31fea8e815aaf37e4ac770c091',
    'Synscapes/img/instance/4.png': '2b89ef63a719718c8a378118cd85ca320a0e644e84ba78cb1d107a5a2f0e8835',
    'Synscapes/img/instance/5.png': 'c520bc5df802f0f7d64b1cec1b1ddfe866a9514e52cea8d5419af3f443537196',
    'Synscapes/img/instance/6.png': 'f1c8d9d69ee8c167b7def123283b8c1a0012ec02639149bf24fd544c958b3415',
    'Synscapes/img/rgb/1.png': 'e0c7f7639363fc2cab4f369b5072578eed639f55b5853bedb10608de07db8784',
    'Synscapes/img/rgb/2.png': 'c1b0164e64ebe37a7b0b2883b590f1847fbb734439407f57621b5b3aad5ac12a',
    'Synscapes/img/rgb/20001.png': 'd91bd1e9756faa925abcc907b918f3cbf1b3117bb74851f6f6d31ab8c580eacf',
    'Synscapes/img/rgb/20002.png': '2419ed921ad532d076b00ba5c2150c388da8fbdacd7a287d94681a0d914c8db1',
    'Synscapes/img/rgb/3.png': '97634836bda0417fc2c7dd77b4993a4c1e5de4ca3cfe1fc6ab89a5d15eeb81a0',
    'Synscapes/img/rgb/4.png': '06ada2ae33e87d67d3c09689cb28ed7d82bf31c0377f094225dbd354900a0335',
    'Synscapes/img/rgb/5.png': '0e701a7c5a69e08a9eee8875b8cae6eb20157d4ec93a230e27e6ae8819e446ef',
    'Synscapes/img/rgb/6.png': 'c46649c9a61f86ef221d20981117c83b498e616f17682e5cec8380b554fde2e2',
    'Synscapes/meta/1.json': '6b4133e378defb2d7fc30b8ced9bc2a46333bbd7774fef1d4f283db61c3a3ee3',
    'Synscapes/meta/2.json': '3cef7066071d57c2d79d00a8d844cf68bd8d3c198036d3c43f85317e9b25b222',
    'Synscapes/meta/20001.json': '1a57b42c25b49869790e4fab825a6a2879e39307ccdaf2c914d6fffbecc10201',
    'Synscapes/meta/20002.json': '60894278f35c58314a88d246d6a6778b4ce69be4f1ea757e2b2615f14b5cbbc3',
    'Synscapes/meta/3.json': '36090d1ef5b0d68db86e1b2d8e26590eedd39de9ea8ba59d6b5dcc4392e66729',
    'Synscapes/meta/4.json': '5a9d8180592de2afd12f01ced2c32ec7cad354879517d318f00c553b2f97f043',
    'Synscapes/meta/5.json': 'a4e3a66e7e7fe9de8cc7257a2512abca9d1417736406cc19e0b665dd57b66afc',
    'Synscapes/meta/6.json': '06604d2190f33a1d2c6164d294f7a204cbcbb200a47eaa7049e35ff8903bcde9',
    'cityscapes/gtFine/train/elmburg/elmburg_000000_000019_gtFine_color.png': '44ad7e8af6aa52eef46ef33a6903a54856f67cd3595d7517c8578affdee872a9',
    'cityscapes/gtFine/train/elmburg/elmburg_000000_000019_gtFine_instanceIds.png': 'c57c663254d477b1bd52104756a9c31fa6f3c5c0216d7b5575157b3cc4ddd99f',
    'cityscapes/gtFine/train/elmburg/elmburg_000000_000019_gtFine_labelIds.png': 'd7f99a543608573e516cb0483fcd197187d83516d6e3821203331902720ec051',
    'cityscapes/gtFine/train/elmburg/elmburg_000000_000019_gtFine_polygons.json': '0d321b48e5d1bc673630b5e9095e5cb93c32ec57387da3bc21b171e280a6e591',
    'cityscapes/gtFine/train/elmburg/elmburg_000001_000019_gtFine_color.png': '9da76d206e15a615b5a29e277d14634b0b604e9e348dd45a477053b395ea2e9e',
    'cityscapes/gtFine/train/elmburg/elmburg_000001_000019_gtFine_instanceIds.png': '908beec8c2f2cca9d0c92402c4e6ebcd568149d53becd016c3112f2f82038749',
    'cityscapes/gtFine/train/elmburg/elmburg_000001_000019_gtFine_labelIds.png': '8dda947116b477d011f4f41149b3fa1485b4b6702c999690a21075c419026abc',
    'cityscapes/gtFine/train/elmburg/elmburg_000001_000019_gtFine_polygons.json': 'bfc511b4b76f7c9475fe506e4bad8e7605bb4c3accabb13cb3fa71abffb17cb7',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000000_000019_gtFine_color.png': '3ecf753bfda5e896573fdfa64c5250f6fe56e6fe72dc85f34a04cccbd57975f6',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000000_000019_gtFine_instanceIds.png': '38a677bb752d7b11ce6132ce159eb11d69fc158c9c91128d94e0f2bbd0726ff3',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000000_000019_gtFine_labelIds.png': 'f8e26c606ebad1388c86b7704fc6db4b3536a5bba423146e7df7fe4d9e439b2d',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000000_000019_gtFine_polygons.json': 'c24654d228a994d755416d6743c12e2d6f1443b8ff1234ecd58b5841b57e5885',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000001_000019_gtFine_color.png': 'adabc3a61036f65b61d4ade9e6fb01f7211f43f094ea372e663f81320dfe6529',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000001_000019_gtFine_instanceIds.png': 'dd155d770ab60d9c8580f975bf74b2d1f0cbfd13bfc37dc592a2dd9694b62b00',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000001_000019_gtFine_labelIds.png': '1334cc1d995f0e434cb1dd2145d9c29d33bab2875b21edd4a760d054762f256e',
    'cityscapes/gtFine/train/koppelfeld/koppelfeld_000001_000019_gtFine_polygons.json': 'd728adcbf82107d486c1e4df590da5f2eaa218d3cb9c9488f544fc5ae6e37167',
    'cityscapes/gtFine/train/tarnstadt/tarnstadt_000000_000019_gtFine_color.png': '9f9235453bca8080fbc9cbadb0f1fd22bc0c9b8e7c9f79c2bfe7b9d2a4623d1b',
    'cityscapes/gtFine/train/tarnstadt/tarnstadt_000000_000019_gtFine_instanceIds.png': 'c74b3aec044777b85ae54d6a132d7a8f2cb1547db36008cee2b9cccaa22ead88',
    'cityscapes/gtFine/train/tarnstadt/tarnstadt_000000_000019_gtFine_labelIds.png': '5cb1b5eea6a11ae238b1be3e0571d4ee443f5b2dc8e8b443f8639cd29adeb8f3',
    'cityscapes/gtFine/train/tarnstadt/tarnstadt_000000_000019_gtFine_polygons.json': '91d12a25d9cbd2b4188cb71ddf42a9f0b7aa32316618fc9993cd9c0eb6934da8',
    'cityscapes/gtFine/val/marlow/marlow_000000_000019_gtFine_color.png': 'af8c3fcbe83100b5c034c68c8085bbb597763434bb21ec178294f1403c4a4f10',
    'cityscapes/gtFine/val/marlow/marlow_000000_000019_gtFine_instanceIds.png': 'c83b1330de08ec3ddcbd083382de7df28046eaace04d9b8e4f318a351fdcace7',
    'cityscapes/gtFine/val/marlow/marlow_000000_000019_gtFine_labelIds.png': '768ca5a3f3fd072d4527346b6ee02f6bb3d723e2812d693dfe599132d4f5c117',
    'cityscapes/gtFine/val/marlow/marlow_000000_000019_gtFine_polygons.json': 'ec2ac7af3f367cdd04835bd9ce390421bdb2ce8f10669a56511911b695b31d3e',
    'cityscapes/gtFine/val/marlow/marlow_000001_000019_gtFine_color.png': '4a59922f8e524a4ceb3a8261bb6733884c4f09f00d14ff261f8f6eeaf186f0b4',
    'cityscapes/gtFine/val/marlow/marlow_000001_000019_gtFine_instanceIds.png': 'd68120acfcc20f31afe2999bc9f80bb619ab2cef892e27cd0fb37e90a5ca8a90',
    'cityscapes/gtFine/val/marlow/marlow_000001_000019_gtFine_labelIds.png': '799a3403848254b155a8e09c3e576d68e68cb53855dfe4a73ca2731a7ad6e2fe',
    'cityscapes/gtFine/val/marlow/marlow_000001_000019_gtFine_polygons.json': 'f832e5d04c155b3ef2a2c67cb10f522fa6a47960f1c317e3cef808bb6c76b39e',
    'cityscapes/gtFine/val/wendhausen/wendhausen_000000_000019_gtFine_color.png': '5ad4852eca1e12a647b917aa6fd54bb925fff0ddb830bac537995d984a5bdcc9',
    'cityscapes/gtFine/val/wendhausen/wendhausen_000000_000019_gtFine_instanceIds.png': 'b08d20aa65255415e34f9817e207ff2f588e01c41bd8856a2d93fec2b93bdce6',
    'cityscapes/gtFine/val/wendhausen/wendhausen_000000_000019_gtFine_labelIds.png': '4db3d0c8b7f531007f2bcc03a0496e3a480810e8eb813f7079f6cb0776f4df6a',
    'cityscapes/gtFine/val/wendhausen/wendhausen_000000_000019_gtFine_polygons.json': 'aab32019c2fc9074df1fafa9c744886b0db31ac3023d7106a63bedb6993080d3',
    'cityscapes/leftImg8bit/train/elmburg/elmburg_000000_000019_leftImg8bit.png': 'ea900ed8a2aa2aef18d0caf8adc4c88a44f7c6266217a0f41232af123bfba370',
    'cityscapes/leftImg8bit/train/elmburg/elmburg_000001_000019_leftImg8bit.png': 'a797b797b48a6ed22a7d25d327189e9f54fe67a856381a8f218991dd31cca269',
    'cityscapes/leftImg8bit/train/koppelfeld/koppelfeld_000000_000019_leftImg8bit.png': '07a9ccff70e614fc9e534e7a36fd81e89a199d119571caffb02631d9e6152727',
    'cityscapes/leftImg8bit/train/koppelfeld/koppelfeld_000001_000019_leftImg8bit.png': '23885cf38724944041cfb92c9c7229beb2a6da0562d21fc9a2389eb4df406802',
    'cityscapes/leftImg8bit/train/tarnstadt/tarnstadt_000000_000019_leftImg8bit.png': 'eca5c9a48e57a4eab6583aa2d2151b499446ca9415fd0f3f4ab36c830a47962a',
    'cityscapes/leftImg8bit/val/marlow/marlow_000000_000019_leftImg8bit.png': '0629fda4be33679908336baeceb38126e720a9743220569e0c5c4ce65d50df86',
    'cityscapes/leftImg8bit/val/marlow/marlow_000001_000019_leftImg8bit.png': '42628d4a850a6961fc893f5cc6164547d1fb7c0bb388a7bd6415d96f157fc641',
    'cityscapes/leftImg8bit/val/wendhausen/wendhausen_000000_000019_leftImg8bit.png': '20c4a9f0d2ad80029aa19b709b3e114545a343478375c586fb72016f15986f8d',
    'manifests/mix.coco.json': 'f410357f5dbe6a72c94d00fd5ad368083cb1dc440081fc2d5ee02b73f333c11e',
    'manifests/mix.json': '36906c1c6f3b2f3c500d6f29502f33df7eda726d06d757c69610b8babd641797',
    'manifests/prune/prune_00.coco.json': '5e80c0c4879ff3b93b61a05de0e18715dc4ec86912458e428b6454d2f11f747f',
    'manifests/prune/prune_00.json': '3dde2339fd5a53608515820fbac4fc1f9d1ba42e9cee3ed5fcf12662832b790c',
    'manifests/prune/prune_10.coco.json': 'a929d3c7d97f35acab3c6abba063146f2992d890f0ba99c2a1906206349ed7dc',
    'manifests/prune/prune_10.json': '20bc703a4f252c90e25b732ba473fba278861c097a195cdb5be8d2d70c6bb53e',
    'manifests/prune/prune_20.coco.json': '74d6e58add06c12f5911c06a400991f5d19e931296556bf882bb48ab0c5d6895',
    'manifests/prune/prune_20.json': 'f166f9adf38a2dfc7b1949e58ee31e55b7ddc42273905380b4d9b8850b57295a',
    'manifests/prune/prune_30.coco.json': 'efa3e2e4419482990e2429ad397c94df4b3f581424583f5dc9449f4c4fec7c23',
    'manifests/prune/prune_30.json': 'd7e6c2ca1766405d8e7a6b9170e4bbdbf3cd5e086861fe4df7159092ec295555',
    'manifests/prune/prune_40.coco.json': '8f18dc4b1cb82464df8628811cd240bb30a9748a25cf2de1fa804a2f4ec5c709',
    'manifests/prune/prune_40.json': '1f801a159dec6962f4f778ff4fe63eea84203d2ecc76219be9169883f618ae4d',
    'manifests/prune/prune_50.coco.json': '1b15b82ff6381de046cb0c5b02f14675ff2d11d13e63e2bd81a20794d5496325',
    'manifests/prune/prune_50.json': '1b365ee89f41bd8f62138256919eb0a37537cfc20d640fda9362d7c21c84c26e',
    'manifests/prune/prune_60.coco.json': '0634752e0543235781f437347a3b6dfeea4df2cbaefbd8ca50d2a42455eb05f6',
    'manifests/prune/prune_60.json': 'f6bad2656d199e15796adb11cb9000f7160a0ef3c5b834b6e885f9eb7c186390',
    'manifests/prune/prune_70.coco.json': '06e6f55639d2703ae2ec444b0141f47eabdb2af28f3589ee6c513c456d733838',
    'manifests/prune/prune_70.json': 'f79d03680b2023c4f61146b075c42d1b4f471049321bfd77fc51b46a1bd12e25',
    'manifests/prune/prune_80.coco.json': '223e5436f63e301a89e726765e4d603feb8a11be598d26ed9cb065eae9eddafb',
    'manifests/prune/prune_80.json': '50295b1180f89e661be3faf04e8ca1c5946d7bd6d18ae5a818cf3d79ec75bbee',
    'manifests/prune/prune_90.coco.json': '065b175bf59bb13dd262ac225724b62d06a1b2d1c695abbc201c1bfc8301d370',
    'manifests/prune/prune_90.json': 'a307578440db46f931f0c6f12efbc4b4ba6442e747ca1596eb8435a4d9c75a46',
    'out/cityscapes_train.json': 'bce64a51207d1d8922193e079e2e90a378da6f18712d6ea386f3bc9a3aec3a33',
    'out/cityscapes_val.json': '929bf0edf59195d8b94c95fcdfbe2115a229da7532b5b07e846428ef9f686f66',
    'out/gtFine/train/synscapes/synscapes_000000_000001_gtFine_instanceIds.png': '374ad32b822549e5deeb4749d9f21af202d4d9f3bef3dc75545e6e082fab25f4',
    'out/gtFine/train/synscapes/synscapes_000000_000001_gtFine_labelIds.png': '30585980c6842c4653a63a771e5e19f2ac603142d1783f6b79788423aa0c8acb',
    'out/gtFine/train/synscapes/synscapes_000000_000001_gtFine_labelTrainIds.png': '7e380077cdf28aa1cb49211377ba1e0707be77aafcea86ed98cb21e70222db15',
    'out/gtFine/train/synscapes/synscapes_000000_000001_gtFine_polygons.json': '0575bef3d78d03e8f738cdc5658400ebaf2d2240d4c4ee8718d91bf149917442',
    'out/gtFine/train/synscapes/synscapes_000000_000002_gtFine_instanceIds.png': '59b4d41478ecad331d522a5844ef11dc7eef8cac2579559dfd2d38fffb3b96a1',
    'out/gtFine/train/synscapes/synscapes_000000_000002_gtFine_labelIds.png': 'd001f9288c9108f2134edcbe034ba1e034314edf8852ba841ceb4436d5bfbe3f',
    'out/gtFine/train/synscapes/synscapes_000000_000002_gtFine_labelTrainIds.png': '20a4d3ec762ca12a7c6cbfca51cfcead9b334760e1d7337ed8de70b615f6ce3d',
    'out/gtFine/train/synscapes/synscapes_000000_000002_gtFine_polygons.json': 'dc7e85725ee0c26339c9552ca1656df0ca9dbb4025cb1c6d673d0e899452f162',
    'out/gtFine/train/synscapes/synscapes_000000_000003_gtFine_instanceIds.png': 'b897818f46c928230ebfc4b0820df1d5c7f7fd58fd0a3e11a525c6e458367ce9',
    'out/gtFine/train/synscapes/synscapes_000000_000003_gtFine_labelIds.png': '45ce61228ef7f91174536af372075373910a1a817156a6490e3eea9af5786044',
    'out/gtFine/train/synscapes/synscapes_000000_000003_gtFine_labelTrainIds.png': '3d24bf57cd0b66f4f38325540e5ae4b9fd37b52833360c7891279fe2eeeaed24',
    'out/gtFine/train/synscapes/synscapes_000000_000003_gtFine_polygons.json': 'c470b894d9a0ba46c08c870e616675ddacfe620dc4abcde6abfcaf0184447740',
    'out/gtFine/train/synscapes/synscapes_000000_000004_gtFine_instanceIds.png': '95c9f47725bd3b3d1b3272200f084049a606f909e2c77efe7d6bfdcd287b6207',
    'out/gtFine/train/synscapes/synscapes_000000_000004_gtFine_labelIds.png': '31ad049bd4afa776c6978f5f36df19f5c932f8d2a4c9d54cb1ee094c39939b7a',
    'out/gtFine/train/synscapes/synscapes_000000_000004_gtFine_labelTrainIds.png': 'c69f3353688fd0a4368f4dfea7eecede8c4c0414d61bde5aed30828a83fc8801',
    'out/gtFine/train/synscapes/synscapes_000000_000004_gtFine_polygons.json': 'b7fbc5c7f3653f527b63322d5d8b7fd51314aaf8e1a0712c3299e26ccd40c7d3',
    'out/gtFine/train/synscapes/synscapes_000000_000005_gtFine_instanceIds.png': '07b7465504159f7c31eb12a494bc5ba4d8f50f709fafe7eb8901ddf2c8d4fe29',
    'out/gtFine/train/synscapes/synscapes_000000_000005_gtFine_labelIds.png': '875e023f5e637ac84a40e7769ac5fd2cec8816cbe91b6c2578c0280a6475b2a9',
    'out/gtFine/train/synscapes/synscapes_000000_000005_gtFine_labelTrainIds.png': '0b78f9eef48b9e88f060d00fef923d9530b54bc2219edf3a3b11d14cb1f080f6',
    'out/gtFine/train/synscapes/synscapes_000000_000005_gtFine_polygons.json': '242d251888cef7e69125950504caacf9ae0936a808e93b1436a45afd54cdf899',
    'out/gtFine/train/synscapes/synscapes_000000_000006_gtFine_instanceIds.png': '398d6e8570852e7f53bd3d6692a6d3072a42339a71de7642b08a97ff745bccd1',
    'out/gtFine/train/synscapes/synscapes_000000_000006_gtFine_labelIds.png': 'c65b2657d2226f7862fce76667a89bbebb2d3a56104fb34ddabd67678b108e2d',
    'out/gtFine/train/synscapes/synscapes_000000_000006_gtFine_labelTrainIds.png': '7d1e4d7381d815d189c22a831b09c53107cb2d0440b65e06c6885e89caf6d454',
    'out/gtFine/train/synscapes/synscapes_000000_000006_gtFine_polygons.json': 'd5ec25464f751c9ca193fa1e394b3dd2b4267536098df324cf68dece258d69c0',
    'out/gtFine/val/synscapes/synscapes_000000_020001_gtFine_instanceIds.png': '750f6089e2c205553caa352e79862e94e829c0643f6ce95b28886399427f0948',
    'out/gtFine/val/synscapes/synscapes_000000_020001_gtFine_labelIds.png': '8faaf9b3578562b1b167b445f196bbef016be326e03a12ae7646620947fe7ed0',
    'out/gtFine/val/synscapes/synscapes_000000_020001_gtFine_labelTrainIds.png': '1d7ca933333007bd56e37ef35b231ce25fb163cf1aa9664652d784cc0fe02df6',
    'out/gtFine/val/synscapes/synscapes_000000_020001_gtFine_polygons.json': 'c71c42529bab9baba2b4e9ea26ee095d5d4855694232c298dbd38d2f178c85fc',
    'out/gtFine/val/synscapes/synscapes_000000_020002_gtFine_instanceIds.png': 'ec611e837228ce9e62ce5b4af85086d297290ca82b3657b188934b0db35dde59',
    'out/gtFine/val/synscapes/synscapes_000000_020002_gtFine_labelIds.png': '5f2c564c9fad75cc8919ccfd51df27db5e0dd2edcb217775f58e514c2bc7ee7b',
    'out/gtFine/val/synscapes/synscapes_000000_020002_gtFine_labelTrainIds.png': 'f61363ae6ad96c368b8d4a1066a505af8fd40e9b1058bfb9951756c7666e60b1',
    'out/gtFine/val/synscapes/synscapes_000000_020002_gtFine_polygons.json': 'f0e688b4d7da77596c4cb9e887b54c127566dda7bdbf174dc7a285a09782e17a',
    'out/instances.parquet': 'parquet:814fb6ef18ea7fa61952ad1b21380e249d463b65cd872a12e8104c31008011c9',
    'out/stats/summary.csv': 'aa685e99a33e113129205f24bd62199f959cf743ed2907871a8ea0159b1c5588',
    'out/stats/thresholds.json': '2c65c6534899c4a904672d46cc8d1c5fd9b5fd66660787e9093be3fed37308e6',
    'out/synscapes_train.json': '87bab180f2649ddf4b30c21af4db93001ab143832df553ee721ab0f608b6d413',
    'out/synscapes_val.json': '8ce5e8e70f536a66982da294d4df0d28f76124cb402a608b9116822080446ab6',
}


def _pinned(rel: str) -> bool:
    if rel.endswith(UNPINNED_EXCEPT):
        return True
    if rel.startswith(("Synscapes/", "cityscapes/")):
        return True  # the sample sets themselves, PNGs included
    return not rel.endswith(UNPINNED_SUFFIXES)


def _parquet_digest(path: Path) -> str:
    """The table's columns, types and values (its metadata records sha256s of path-bearing files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table.replace_schema_metadata(None))
    return "parquet:" + hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _digest(path: Path, base: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.suffix == ".parquet":
        return _parquet_digest(path)
    data = path.read_bytes().replace(str(base).encode(), b"<BASE>")
    # Manifests record the sha256 of files that hold absolute paths; those files are pinned themselves.
    data = re.sub(rb'"sha256": ?"[0-9a-f]{64}"', b'"sha256":"<SHA256>"', data)
    return hashlib.sha256(data).hexdigest()


def _run_all(base: Path, decoder: str = "auto", sweep: str = "auto", workers: int = 1) -> dict[str, str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "SYNMIX_PNG_DECODER": decoder, "SYNMIX_RLE": sweep}
    for command in COMMANDS:
        if workers > 1:  # small shards, or the one shard would run in this process
            command = command.replace("--workers 1", f"--workers {workers} --shard-size 2")
        result = subprocess.run([sys.executable, "-m", "curate", *command.split()], cwd=base, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"curate {command}: {result.stderr}"
    sums = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if (path.is_file() or path.is_symlink()) and _pinned(rel):
            sums[rel] = _digest(path, base)
    return sums


# The label maps decoded by synmix's own decoder (zlib-ng + curate/_rle.c, where both exist) and
# swept for runs by curate/_rle.c in this process, or by the fallbacks (imagecodecs' libpng; OpenCV's
# decoder and NumPy's run pass; forced by SYNMIX_PNG_DECODER and SYNMIX_RLE) in two worker
# processes: the same bytes every way.
@pytest.mark.parametrize(("decoder", "sweep", "workers"),
                         [("auto", "auto", 1), ("imagecodecs", "auto", 2), ("opencv", "numpy", 2)])
def test_outputs_are_byte_identical_to_the_pinned_ones(tmp_path, decoder, sweep, workers):
    sums = _run_all(tmp_path, decoder, sweep, workers)
    if os.environ.get("SYNMIX_PRINT_PINS"):
        print("PINS: dict[str, str] = {")
        for rel, digest in sums.items():
            print(f"    {rel!r}: {digest!r},")
        print("}")
    if not PINS:
        pytest.fail("no pins recorded")
    missing = sorted(set(PINS) - set(sums))
    extra = sorted(set(sums) - set(PINS))
    changed = sorted(rel for rel in set(PINS) & set(sums) if PINS[rel] != sums[rel])
    assert not missing, f"outputs no longer written: {missing[:10]}"
    assert not extra, f"new outputs not pinned: {extra[:10]}"
    assert not changed, f"outputs whose bytes changed: {changed[:10]}"
