"""Self-attention: q, k, v, the scores q·kᵀ/√d_k, each row's softmax (masked keys exactly 0),
the context and every gradient. Checked against the hand-derived example, PyTorch's
scaled_dot_product_attention and nn.MultiheadAttention, finite differences, the checker's
slips and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.network.parse import load_network
from tests.errors_helpers import Case, assert_one_located_error
from tests.helpers import check_gradients, cli, spec_from, values, write_net


def approx(expected: Any) -> Any:
    return pytest.approx(np.array(expected, dtype=float), abs=2e-6)


def test_the_example_reproduces_the_hand_derived_head():
    v = {r.name: r.value for r in engine.run(load_network("examples/attention.yaml")).steps[0]}
    assert v["attn.scores"] == approx([[1, 1, 0], [1, 2, 1], [0, 1, 1]])
    assert v["attn.weights"] == approx(
        [[1, 0, 0], [0.268941, 0.731059, 0], [0.155362, 0.422319, 0.422319]]
    )
    assert v["attn.weights"][0, 1] == 0.0 and v["attn.weights"][1, 2] == 0.0  # exactly
    assert v["attn.a"] == approx([[1, 0], [1, -0.731059], [0.577681, -0.844638]])
    assert v["loss"] == pytest.approx(0.790788, abs=2e-6)
    assert v["grad.attn.weights"] == approx(
        [[0, 0, 0], [0, 0.731059, 0.731059], [0.577681, 1.422319, 0.844638]]
    )
    assert v["grad.attn.scores"] == approx(
        [[0, 0, 0], [-0.143735, 0.143735, 0], [-0.072935, 0.158450, -0.085516]]
    )
    assert v["grad.attn.v"] == approx(
        [[0.089750, -0.327837], [0.243966, -0.891153], [0.243966, -0.356706]]
    )
    assert v["grad.attn.weights_v"] == approx([[0.333716, 0.487932], [-1.218990, -1.247859]])


TORCH_VALUES = {'plain': {'scores': [[[0.35309999999999997, -0.33149999999999996, -0.2859],
                       [0.38115, 0.4241500000000001, -0.7898999999999999],
                       [-0.5826, 0.1824500000000001, 0.74415]],
                      [[0.12150000000000002, -0.13985, 0.3335000000000001],
                       [0.019049999999999984, 0.2810000000000001, -0.3665500000000001],
                       [-0.19460000000000002, -0.022150000000000072, 0.5352]]],
           'weights': [[[0.4920988882505627, 0.24816148629598886, 0.2597396254534483],
                        [0.4248126037799495, 0.4434779752960479, 0.13170942092400248],
                        [0.1445530230090425, 0.3106591658558143, 0.5447878111351431]],
                       [[0.33265037400145997, 0.25614456970606203, 0.41120505629247794],
                        [0.33562632612772764, 0.43613351192027, 0.22824016195200242],
                        [0.23458330035496028, 0.27873478831082144, 0.4866819113342182]]],
           'a': [[[0.08194543714934585,
                   -0.05342615394081007,
                   0.121921960080427,
                   0.004753620300432235],
                  [0.20322838682820232,
                   -0.07070522810374896,
                   -0.02895787279550481,
                   0.2239846798928512],
                  [-0.14331880209244263,
                   0.47245011468898135,
                   -0.19368951240193413,
                   0.04882228257490992]],
                 [[0.2566073219940199,
                   0.23455163595628914,
                   0.052905902926823956,
                   0.31265556508827064],
                  [0.12408453236966642,
                   0.09288172484341158,
                   0.29551954251447105,
                   -0.012991064088013482],
                  [0.27738195039821545,
                   0.13998714362821185,
                   0.036104600506881745,
                   0.32691073284174355]]],
           'loss': 0.07451150855027122,
           'grad_x': [[[-0.013210139305150964,
                        -0.005219941356830218,
                        0.011177658343803144,
                        -0.014340654696073468],
                       [-6.481635803467709e-05,
                        -0.0032890101398630788,
                        0.010287015012669758,
                        0.0021283067024097553],
                       [-0.02328771950996498,
                        0.0022908583223585494,
                        0.005869557680748589,
                        -0.016208163792763425]],
                      [[-0.010336864020203545,
                        0.014681725745449684,
                        0.00236608185722985,
                        0.008938546139551164],
                       [-0.012793933304482565,
                        0.02383227489502362,
                        -0.006247284338138512,
                        0.0014394093229808057],
                       [0.005554330249862961,
                        0.016476778224580983,
                        -0.010245074184145981,
                        0.018019944647952132]]],
           'grad_wq': [[-0.0031766830764055343,
                        0.010088467742059081,
                        -0.011553968883925377,
                        -0.0013687908140415277],
                       [-0.003380792913401335,
                        0.005164410500269201,
                        -0.008294321681569825,
                        0.0022824866786199972],
                       [0.004633794293680842,
                        -0.011083164498376322,
                        0.015546119716165775,
                        -0.0010449893573340576],
                       [-0.003163997010285579,
                        0.009488538134450565,
                        -0.010879080164036378,
                        -0.00028136988837055465]],
           'grad_wk': [[-0.013139085666631124,
                        0.012998556634603423,
                        -0.0036377822574799198,
                        0.0010842223574774768],
                       [0.018389927670097478,
                        -0.019306658694809666,
                        0.0035191419016345118,
                        0.0020579781445997647],
                       [-0.0032879415387714363,
                        0.004307193504710834,
                        0.0009130024670975312,
                        -0.0016211976869458737],
                       [-0.0025929420235748027,
                        0.002865831194745464,
                        -0.0034955231088551458,
                        0.002810843560361518]],
           'grad_wv': [[0.020612079087732577,
                        -0.0026329266952910477,
                        -0.01921325118443641,
                        0.03029705008719287],
                       [0.003223829223616432,
                        0.011481800789490113,
                        0.015316551381506739,
                        0.0181817079373454],
                       [0.014082837934459035,
                        0.002645966270524643,
                        -0.009385721176753861,
                        0.006258607259680929],
                       [-0.013996883771671575,
                        0.012313291573854163,
                        0.001100554463460142,
                        0.00575687820305371]]},
 'causal_bias_out': {'scores': [[[0.31210000000000004, -0.43425, -0.18415000000000004],
                                 [0.5286500000000001, 0.5099000000000001, -0.4996499999999999],
                                 [-0.7776, -0.07429999999999992, 0.6919]],
                                [[0.28150000000000003, 0.04414999999999998, 0.392],
                                 [-0.13995000000000002, 0.14600000000000005, -0.6270500000000001],
                                 [0.03539999999999999, 0.23184999999999995, 0.6637]]],
                     'weights': [[[1.0, 0.0, 0.0],
                                  [0.5046873626757262, 0.4953126373242738, 0.0],
                                  [0.1357318023174507, 0.2742337642670175, 0.5900344334155319]],
                                 [[1.0, 0.0, 0.0],
                                  [0.4289956619598931, 0.571004338040107, 0.0],
                                  [0.24440939068607903, 0.29746442856507965, 0.45812618074884126]]],
                     'a': [[[0.42000000000000004, -0.5640000000000001, 0.357, 0.30400000000000005],
                            [0.44377500659156516,
                             0.00016109391234784415,
                             -0.02092354227842079,
                             0.07268899836956419],
                            [-0.10848838919064131,
                             0.32245576121344544,
                             -0.009189521424265809,
                             0.20012424385733965]],
                           [[0.16499999999999998, 0.5760000000000001, 0.173, 0.32999999999999996],
                            [0.06221921915278071,
                             -0.18229376091726207,
                             0.3939786788215214,
                             0.4316387721711391],
                            [0.34235199795570176,
                             0.15073091093615076,
                             0.07554818598722346,
                             0.17312687750161487]]],
                     'loss': 0.09244794048334061,
                     'grad_x': [[[0.009432475721130765,
                                  -0.012646643483025572,
                                  0.02432018266116316,
                                  0.018423870644551796],
                                 [0.009866273295992788,
                                  -0.011470448743641623,
                                  0.004829726795967426,
                                  0.011237649448530299],
                                 [-0.018265455604417846,
                                  -0.0071228960470844545,
                                  0.02434916365349485,
                                  -0.01686003874440653]],
                                [[-0.014880864774274069,
                                  0.02082409078878103,
                                  0.012717253024305462,
                                  0.014888951109353031],
                                 [-0.0016546656224941734,
                                  0.0073396714112871604,
                                  -0.001878365408662996,
                                  0.0026146561538857235],
                                 [0.01385094114044879,
                                  0.002854415924318631,
                                  -0.014262459793220647,
                                  0.010442119577818152]]],
                     'grad_wq': [[-0.0006585445346258044,
                                  0.0030018482275049317,
                                  -0.0013310908501099844,
                                  -0.0010239900004801322],
                                 [0.012742997852818676,
                                  -0.0032460440954634705,
                                  -0.008433777199068737,
                                  0.006180822234747869],
                                 [-0.0043365841339272,
                                  -0.0025065606185286126,
                                  0.007196005127486003,
                                  -0.003483149567184946],
                                 [0.004965793567961038,
                                  0.0004664339559805195,
                                  -0.0035923245317754336,
                                  0.0012807448258948897]],
                     'grad_wk': [[0.003280052008885457,
                                  0.004889391510368166,
                                  -0.004067529014117744,
                                  0.0024036333043210233],
                                 [0.007657534350015893,
                                  -0.005746817160641798,
                                  -0.00450106866819338,
                                  0.0017526968311534505],
                                 [-0.011386310081228859,
                                  -0.0015367138096767797,
                                  0.010101645555325639,
                                  -0.004591717677256156],
                                 [0.004273754651928037,
                                  0.001209968263860914,
                                  -0.006252434400043199,
                                  0.002970492720261352]],
                     'grad_wv': [[0.008688227360284365,
                                  0.009699483294813228,
                                  0.006094560564382902,
                                  0.02044490392677122],
                                 [-0.024449391445614185,
                                  0.03080426289704683,
                                  0.02964931591193109,
                                  0.012130514997888468],
                                 [0.03217274812448389,
                                  0.005403283707139658,
                                  5.777937447462231e-05,
                                  0.013664999355822454],
                                 [0.020186784387418402,
                                  0.0039602834059238295,
                                  -0.027145504957347348,
                                  0.012626384066083532]],
                     'grad_wo': [[0.038072524453637,
                                  -0.01784764879122778,
                                  0.0055701664031946665,
                                  0.023722921492782868],
                                 [0.0090968416480463,
                                  0.05439078795568571,
                                  0.008100094969848762,
                                  0.005481971060910777],
                                 [0.031525472019810555,
                                  0.014203927688530916,
                                  0.010728808523503566,
                                  0.009756163797177943],
                                 [0.007881099755651686,
                                  0.03185424110953367,
                                  0.028932421408077662,
                                  -0.027833862798438705]],
                     'grad_bq': [-0.000477495496991404,
                                 -0.007285963929249927,
                                 0.0025496072012671507,
                                 -0.0030082034113433393],
                     'grad_bk': [8.673617379884035e-19,
                                 -8.673617379884035e-19,
                                 1.734723475976807e-18,
                                 2.168404344971009e-19],
                     'grad_bv': [0.03911107651355216,
                                 0.038914206945913576,
                                 0.05659258338815382,
                                 -0.011178661238443932],
                     'grad_bo': [0.03540481954245051,
                                 0.033587833762056825,
                                 0.06411781675883818,
                                 0.07596490765830483]},
 'two_heads_causal': {'weights': [[[[1.0, 0.0, 0.0],
                                    [0.4304156029007759, 0.569584397099224, 0.0],
                                    [0.22522854885986668, 0.30401296725672666, 0.4707584838834067]],
                                   [[1.0, 0.0, 0.0],
                                    [0.5760727784553326, 0.42392722154466744, 0.0],
                                    [0.14650442143130138,
                                     0.29345294720752835,
                                     0.5600426313611704]]],
                                  [[[1.0, 0.0, 0.0],
                                    [0.38516540261615695, 0.614834597383843, 0.0],
                                    [0.28987585275094085, 0.2505294825478138, 0.45959466470124527]],
                                   [[1.0, 0.0, 0.0],
                                    [0.5158162357479552, 0.4841837642520448, 0.0],
                                    [0.24622884934623132,
                                     0.37613938093298527,
                                     0.37763176972078333]]]],
                      'a': [[[0.42000000000000004, -0.564, 0.3569999999999999, 0.304],
                             [0.41966518770539696,
                              -0.007153049478908997,
                              0.043885189425792254,
                              0.154092855471644],
                             [-0.009034189218635039,
                              0.2622263290658066,
                              -0.05137554111389436,
                              0.17867214382229674]],
                            [[0.16499999999999998, 0.5760000000000001, 0.17300000000000004, 0.33],
                             [0.09169591074660252,
                              -0.179355755420062,
                              0.35345462260955607,
                              0.33596509849393985],
                             [0.3057804258150067,
                              0.1338513689068062,
                              0.1342652480487872,
                              0.29440097949405003]]],
                      'loss': 0.0824885063148577,
                      'grad_x': [[[0.008596004542048096,
                                   -0.010698059118386538,
                                   0.02887473783476485,
                                   0.020083257983694428],
                                  [0.00870044431989194,
                                   -0.0134770912122871,
                                   0.007499167179609044,
                                   0.009562716313575479],
                                  [-0.010603252413232449,
                                   -0.005081665393407089,
                                   0.016795089579212552,
                                   -0.009557943780478657]],
                                 [[-0.015986459249136175,
                                   0.01699414192425269,
                                   0.014277725317739165,
                                   0.0161160253623921],
                                  [0.003484414787061486,
                                   0.011456929483789107,
                                   -0.00834588116268726,
                                   0.004237398798841928],
                                  [0.010482968632871133,
                                   0.0007512783557921481,
                                   -0.007170277054202713,
                                   0.008795243859231795]]],
                      'grad_wq': [[0.0005448514796278258,
                                   0.005058736837578566,
                                   -0.0060560803236982,
                                   0.0013611717420602982],
                                  [0.00631291630889836,
                                   -0.0022546819609552946,
                                   -0.0036365621473195215,
                                   0.003113496489364641],
                                  [-0.0030866012508071064,
                                   0.0005552940221024449,
                                   0.0005203796272704017,
                                   -0.0003104596229334288],
                                  [0.002292366816604456,
                                   0.00021120038484579432,
                                   -0.0009471738972737638,
                                   0.000174374552867711]],
                      'grad_wk': [[-0.0012867913166506356,
                                   0.008293964530887616,
                                   -0.0038374927164009295,
                                   0.004124578165532156],
                                  [0.01148250057475816,
                                   -0.017250036152117322,
                                   0.0034974743516330326,
                                   -0.003361808914729551],
                                  [-0.005266578388490371,
                                   -0.004858513109013138,
                                   0.007868843259006088,
                                   -0.003026231015950358],
                                  [0.0017220521411228696,
                                   0.002649285523668051,
                                   -0.004117329845100345,
                                   0.001928114306947073]],
                      'grad_wv': [[0.0036657990810634224,
                                   0.0131855738548535,
                                   0.0063035739318732294,
                                   0.019922436892805095],
                                  [-0.015740660715280446,
                                   0.02494067797613675,
                                   0.027865633152986916,
                                   0.013916509550606757],
                                  [0.03898353481094948,
                                   0.0021290299168287203,
                                   -0.00035087946282886607,
                                   0.015492361612567979],
                                  [0.019226086597647747,
                                   -0.003455988940980974,
                                   -0.017375524005762193,
                                   0.007733320379848301]],
                      'grad_wo': [[0.033960038825015436,
                                   -0.0009274452787413536,
                                   0.013817605113289262,
                                   0.010260796240483221],
                                  [0.006467560955145765,
                                   0.050084790203811576,
                                   0.0054805726781377295,
                                   0.009293581705250444],
                                  [0.0358565338621982,
                                   0.015783781879799792,
                                   0.013893203595155435,
                                   0.009399033795444801],
                                  [0.01703336083565916,
                                   0.022264320572508517,
                                   0.02177234426623437,
                                   -0.01585675127249814]],
                      'grad_bq': [-0.0021492947418104485,
                                  -0.003276568029325695,
                                  -0.0007231494047732355,
                                  2.3816849373459658e-07],
                      'grad_bk': [-8.673617379884035e-19,
                                  2.6020852139652106e-18,
                                  6.505213034913027e-19,
                                  0.0],
                      'grad_bv': [0.04299681290545425,
                                  0.0368604378840625,
                                  0.06402441724232996,
                                  -0.013035878752086796],
                      'grad_bo': [0.04109227792069759,
                                  0.026797407756136826,
                                  0.06751912658085343,
                                  0.08309425644016089]}}  # fmt: skip

X = [
    [[1.0, -0.5, 0.3, 0.2], [0.3, 0.9, -0.7, 0.1], [-1.2, 0.4, 0.5, -0.3]],
    [[-0.4, 1.1, 0.2, 0.6], [0.6, -0.8, 0.9, -0.2], [0.0, 0.5, -1.0, 0.8]],
]
Y = [
    [[0.5, -0.5, 0.1, 0.0], [0.0, 0.2, -0.3, 0.4], [0.4, 0.4, 0.0, -0.2]],
    [[0.2, 0.0, -0.2, 0.1], [0.1, -0.4, 0.5, 0.0], [-0.3, 0.2, 0.1, 0.3]],
]
WQ = [[0.5, -0.3, 0.2, 0.1], [0.2, 0.8, -0.4, 0.3], [-0.6, 0.1, 0.5, -0.2], [0.3, 0.2, 0.1, 0.7]]
WK = [[0.1, -0.4, 0.3, 0.5], [0.7, 0.2, -0.5, 0.1], [-0.2, 0.6, 0.4, -0.3], [0.4, -0.1, 0.2, 0.6]]
WV = [[0.3, 0.1, -0.2, 0.4], [-0.5, 0.6, 0.2, 0.1], [0.2, -0.3, 0.7, 0.5], [0.1, 0.4, -0.6, 0.2]]
WO = [[0.6, -0.2, 0.1, 0.3], [0.2, 0.5, -0.4, 0.1], [-0.3, 0.1, 0.8, 0.2], [0.4, 0.3, 0.2, -0.5]]
BIASES = {
    "bias_q": [0.1, -0.2, 0.05, 0.0],
    "bias_k": [0.0, 0.3, -0.1, 0.2],
    "bias_v": [0.2, 0.1, 0.0, -0.1],
    "bias_o": [0.05, -0.05, 0.1, 0.0],
}


def _net(**layer: Any) -> dict[str, Any]:
    return {
        "inputs": X,
        "targets": Y,
        "layers": [
            {"name": "attn", "type": "attention", "weights_q": WQ, "weights_k": WK,
             "weights_v": WV, **layer}
        ],
        "loss": "mse",
        "learning_rate": 0.1,
    }  # fmt: skip


def _agree(v: dict[str, np.ndarray], ref: dict[str, Any]) -> None:
    assert v["loss"] == pytest.approx(ref["loss"], rel=1e-12)
    np.testing.assert_allclose(v["attn.a"], ref["a"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v["attn.weights"], ref["weights"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v["grad.attn.input"], ref["grad_x"], rtol=1e-10, atol=1e-15)
    for key, value in ref.items():
        if key.startswith("grad_") and key != "grad_x":
            name = key.replace("grad_w", "weights_").replace("grad_b", "bias_")
            np.testing.assert_allclose(
                v[f"grad.attn.{name}"], value, rtol=1e-10, atol=1e-15, err_msg=name
            )


def test_one_head_agrees_with_scaled_dot_product_attention():
    v = values(_net())
    np.testing.assert_allclose(v["attn.scores"], TORCH_VALUES["plain"]["scores"], rtol=1e-12)
    _agree(v, TORCH_VALUES["plain"])


def test_a_causal_head_with_biases_and_an_output_projection_agrees_with_pytorch():
    v = values(_net(causal=True, weights_o=WO, **BIASES))
    np.testing.assert_allclose(
        v["attn.scores"], TORCH_VALUES["causal_bias_out"]["scores"], rtol=1e-12
    )
    _agree(v, TORCH_VALUES["causal_bias_out"])


def test_two_causal_heads_agree_with_multihead_attention():
    v = values(_net(heads=2, causal=True, weights_o=WO, **BIASES))
    assert v["attn.scores"].shape == (2, 2, 3, 3)  # samples, heads, queries, keys
    _agree(v, TORCH_VALUES["two_heads_causal"])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(1, 4),
    d=st.integers(1, 3),
    heads=st.integers(1, 2),
    dk=st.integers(1, 3),
    dv=st.integers(1, 2),
    n=st.integers(1, 2),
    causal=st.booleans(),
    out=st.booleans(),
    biases=st.booleans(),
    masked=st.booleans(),
)
def test_attention_gradients_match_finite_differences(
    seed, t, d, heads, dk, dv, n, causal, out, biases, masked
):
    rng = np.random.default_rng(seed)
    # weights of scale ½ keep the scores moderate: with scores near 20 the loss is large enough
    # that rounding in the finite differences (not the gradient) reaches 1e-6
    layer: dict[str, Any] = {
        "type": "attention",
        "weights_q": (0.5 * rng.normal(size=(dk * heads, d))).tolist(),
        "weights_k": (0.5 * rng.normal(size=(dk * heads, d))).tolist(),
        "weights_v": (0.5 * rng.normal(size=(dv * heads, d))).tolist(),
        "causal": causal,
        "heads": heads,
    }
    width = dv * heads
    if out:
        width = int(rng.integers(1, 4))
        layer["weights_o"] = rng.normal(size=(width, dv * heads)).tolist()
    if biases:
        for p, size in (("q", dk * heads), ("k", dk * heads), ("v", dv * heads)):
            layer[f"bias_{p}"] = rng.normal(size=size).tolist()
        if out:
            layer["bias_o"] = rng.normal(size=width).tolist()
    if masked:
        mask = (rng.random((t, t)) < 0.6).astype(int)
        np.fill_diagonal(mask, 1)  # every query sees at least itself
        layer["mask"] = mask.tolist()
    spec = spec_from(
        {
            "inputs": rng.normal(size=(n, t, d)).tolist(),
            "targets": rng.normal(size=(n, t, width)).tolist(),
            "layers": [layer],
            "loss": {"type": "half_sse", "positions": "mean"},
            "learning_rate": 0.1,
        }
    )
    check_gradients(spec)


def test_attention_after_an_embedding_and_before_a_softmax_matches_finite_differences():
    rng = np.random.default_rng(5)
    spec = spec_from(
        {
            "inputs": [[0, 2, 1, 2], [1, 1, 0, 3]],
            "targets": [[2, 1, 2, 0], [0, 3, 3, 1]],
            "layers": [
                {"type": "embedding", "weights": rng.normal(size=(4, 3)).tolist()},
                {"type": "attention", "causal": True,
                 **{f"weights_{p}": rng.normal(size=(2, 3)).tolist() for p in "qkv"}},
                {"type": "dense", "weights": rng.normal(size=(4, 2)).tolist(),
                 "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "learning_rate": 0.1,
        }
    )  # fmt: skip
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    fwd = engine.forward(layers, params, spec.inputs)
    grads = engine.backward(spec, layers, params, fwd, spec.targets)
    from tests.helpers import loss_of, numeric_grad, rel_error

    for layer, pg in grads.items():
        for pname, g in pg.items():
            num = numeric_grad(lambda: loss_of(spec, params, spec.inputs), params[layer][pname])
            assert rel_error(g, num) < 1e-6, (layer, pname)


def test_explain_writes_one_score_and_one_softmax_row_in_full(capsys):
    code, out, err = cli(
        capsys,
        "step",
        "examples/attention.yaml",
        "--explain",
        "attn.scores[1,2]",
        "--explain",
        "attn.weights[2,1]",
        "--explain",
        "attn.weights[1,2]",
    )
    assert code == 0, err
    assert "attn.scores[1,2] = (q21·k31 + q22·k32 + q23·k33 + q24·k34) / √4" in out
    assert "= (1×0 + 1×0 + 1×1 + 1×1) / √(4) = 1" in out
    assert "attn.weights[2,1] = e^s32 / (e^s31 + e^s32 + e^s33)" in out
    assert "= e^1 / (e^0 + e^1 + e^1) = 0.4223" in out
    assert "attn.weights[1,2] = 0" in out and "masked (causal: key s > t)" in out


@pytest.mark.parametrize(
    ("answer", "slip"),
    [
        # 1/√d_k left out: scores = q·kᵀ = 2(x_t·x_s): row 3 = [0, 2, 2]
        ("attn.scores: [[2, 2, 0], [2, 4, 2], [0, 2, 2]]", "attention_no_scale"),
        # softmax down each column of the (masked) scores: column 1 over t = 1, 2, 3 of
        # [1, 1, 0]: e/(2e + 1) = 0.422319 for t = 1
        ("attn.weights[0,0]: 0.4223", "attention_softmax_columns"),
        # no mask: row 1 = softmax(1, 1, 0) = [e, e, 1]/(2e + 1) = 0.422319, 0.422319, 0.155362
        ("attn.weights[0,1]: 0.4223", "attention_no_mask"),
    ],
)
def test_the_usual_attention_slips_are_named(tmp_path, capsys, answer, slip):
    sheet = write_net(tmp_path, answer + "\n", "a.yaml")
    code, out, err = cli(capsys, "check", "examples/attention.yaml", str(sheet), "--json")
    assert code == 1, err
    found = {d["slip"] for a in json.loads(out)["answers"] for d in a.get("diagnoses", [])}
    assert slip in found, out


def test_the_conventions_name_the_scale_the_heads_and_the_mask(capsys):
    code, out, err = cli(capsys, "step", "examples/attention.yaml", "--json")
    assert code == 0, err
    text = json.loads(out)["conventions"]["attn"]
    assert "scores = q·kᵀ/√d_k, d_k = 4" in text
    assert "causal: position t attends to positions s ≤ t only" in text
    assert "masked weights are exactly 0" in text


# line 4 the attention layer; weights_q at 6:16
ATT = """\
input: [[1, 0], [0, 1], [1, 1]]
target: [[0, 1], [1, 0], [1, 1]]
layers:
  - name: attn
    type: attention
    weights_q: [[1, 0], [0, 1]]
    weights_k: [[1, 0], [0, 1]]
    weights_v: [[1, 0], [0, 1]]
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""

CASES = [
    Case(
        "a causal mask on non-square scores",
        ATT.replace("weights_v: [[1, 0], [0, 1]]", "weights_v: [[1, 0], [0, 1]]\n"
                    "    causal: true\n    mask: [[1, 0, 0], [1, 1, 0]]"),
        "10:11",
        ("scores are 3 x 3", "mask must be 3 x 3", "found 2 x 3"),
    ),
    Case(
        "a mask that leaves a query nothing",
        ATT.replace("weights_v: [[1, 0], [0, 1]]", "weights_v: [[1, 0], [0, 1]]\n"
                    "    causal: true\n    mask: [[0, 1, 1], [1, 1, 1], [1, 1, 1]]"),
        "10:11",
        ("query position 0 attends to no key", "causal: true"),
    ),
    Case(
        "weights_k of another size than weights_q",
        ATT.replace("weights_k: [[1, 0], [0, 1]]", "weights_k: [[1, 0]]"),
        "7:16",
        ("weights_k should be 2 x 2 as weights_q", "found 1 x 2"),
    ),
    Case(
        "weights_q with a column per output",
        ATT.replace("weights_q: [[1, 0], [0, 1]]", "weights_q: [[1, 0, 1], [0, 1, 1]]"),
        "6:16",
        ("weights_q should have 2 columns", "found 2 x 3"),
    ),
    Case(
        "heads that do not divide the projections",
        ATT.replace("weights_v: [[1, 0], [0, 1]]", "weights_v: [[1, 0], [0, 1]]\n    heads: 3"),
        "9:12",
        ("3 heads split weights_q's 2 rows", "do not divide"),
    ),
    Case(
        "a vector where attention expects a sequence",
        "input: [1, 2]\ntarget: [0]\nlayers:\n  - {type: dense, weights: [[1, 0]]}\n"
        "  - {type: attention, weights_q: [[1]], weights_k: [[1]], weights_v: [[1]]}\n"
        "loss: half_sse\nlearning_rate: 0.1\n",
        "5:5",
        ("attention layer 'attention1' needs a sequence", "gives shape (1,)"),
    ),
    Case(
        "an output bias without an output projection",
        ATT.replace("weights_v: [[1, 0], [0, 1]]", "weights_v: [[1, 0], [0, 1]]\n    bias_o: [0, 0]"),
        "9:5",
        ("bias_o needs weights_o",),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_attention_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)


def test_a_transformer_block_matches_finite_differences_and_explains_every_value():
    """embedding -> residual(layernorm -> causal attention) -> dense softmax per position."""
    from tests.explain_helpers import evaluate
    from tests.helpers import loss_of, numeric_grad, rel_error
    from tests.test_explain_evaluates import all_work

    spec = load_network("examples/sequences/transformer_block.yaml")
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    fwd = engine.forward(layers, params, spec.inputs)
    grads = engine.backward(spec, layers, params, fwd, spec.targets)
    assert "block.attn" in grads and "emb" in grads
    for layer, pg in grads.items():
        for pname, g in pg.items():
            num = numeric_grad(lambda: loss_of(spec, params, spec.inputs), params[layer][pname])
            assert rel_error(g, num) < 1e-6, (layer, pname)
    works = all_work(engine.run(spec), decimals=14)
    for rec, w in works:
        assert not w.note.startswith("no step-by-step"), (w.name, w.note)
        if w.substituted and rec.name != "loss_after":
            sub = w.substituted.replace("√2", "√(2)")
            assert evaluate(sub) == pytest.approx(w.value, rel=1e-7, abs=1e-8), w.name


def test_export_declines_a_network_over_sequences_at_its_layer(capsys, tmp_path):
    code, out, err = cli(
        capsys, "export", "examples/sequences/transformer_block.yaml", "--to", "pytorch"
    )
    assert code == 2 and out == ""
    assert "cannot write embedding layers yet" in err
    net = write_net(
        tmp_path,
        "sequence: true\ninput: [[1, 2], [3, 0]]\ntarget: [1, 0]\nlayers:\n"
        "  - {type: dense, weights: [[1, 0], [0, 1]], activation: softmax}\n"
        "loss: cross_entropy\nlearning_rate: 0.1\n",
    )
    code, out, err = cli(capsys, "export", str(net), "--to", "pytorch")
    assert code == 2 and "net.yaml:5:5" in err and "over a sequence" in err
