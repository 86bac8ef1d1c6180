"""The shared vocabulary of neuromodmap: modalities, modality groups, indications,
pain and depression subtypes, and stimulation targets, each with its synonyms.

Every stage uses these codes (trials classification, the literature screener, the
evidence extraction sheet, the connectome target catalogue), so a label means the same
thing everywhere. Synonyms are regular-expression fragments matched case-insensitively
on word boundaries; ``ambiguous`` abbreviations (DBS = dried blood spot, SCS = systemic
corticosteroids, VNS = verbal numeric scale, ...) only count when the surrounding text
confirms the stimulation sense, which is the classifier's job.

Modality groups follow seed 004 (Yamamoto, Elias et al. 2022, Stereotact Funct Neurosurg
100:14-25): non-invasive cortical stimulation, spinal cord stimulation (SCS and DRG),
deep brain stimulation, and the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

__all__ = [
    "Term",
    "Modality",
    "ModalityGroup",
    "Indication",
    "Subtype",
    "Target",
    "MODALITIES",
    "MODALITY_GROUPS",
    "DERIVED_FROM_MODALITIES",
    "labels_from_modalities",
    "INDICATIONS",
    "PAIN_SUBTYPES",
    "DEPRESSION_SUBTYPES",
    "TARGETS",
    "modality",
    "target",
    "group_of",
    "is_invasive",
    "normalise_modality",
    "normalise_target",
    "compile_synonyms",
]


@dataclass(frozen=True)
class Term:
    """A coded term with a readable label and synonym patterns."""

    code: str
    label: str
    synonyms: tuple[str, ...] = ()
    #: abbreviations that also mean something else in clinical text
    ambiguous: tuple[str, ...] = ()
    description: str = ""

    @property
    def patterns(self) -> tuple[str, ...]:
        return self.synonyms + self.ambiguous


@dataclass(frozen=True)
class ModalityGroup(Term):
    pass


@dataclass(frozen=True)
class Modality(Term):
    group: str = "other"
    #: requires surgery or a percutaneous/implanted electrode
    invasive: bool = False
    #: sub-types, e.g. iTBS for TMS or burst for SCS
    variants: tuple[str, ...] = ()
    #: device and brand names
    devices: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[str, ...]:
        return self.synonyms + self.variants + self.devices + self.ambiguous


@dataclass(frozen=True)
class Indication(Term):
    pass


@dataclass(frozen=True)
class Subtype(Term):
    indication: str = "pain"


@dataclass(frozen=True)
class Target(Term):
    #: "superficial" (cortical, reachable by non-invasive stimulation) or "deep"
    depth: str = "superficial"
    #: "left", "right", "bilateral" or "midline"; None when unspecified
    hemisphere: str | None = None
    modalities: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------
# Modality groups (seed 004)
# ---------------------------------------------------------------------------
MODALITY_GROUPS: dict[str, ModalityGroup] = {
    g.code: g
    for g in [
        ModalityGroup("noninvasive_cortical", "Non-invasive cortical stimulation",
                      description="TMS, tDCS, tACS, tRNS, CES"),
        ModalityGroup("spinal_cord", "Spinal cord stimulation",
                      description="SCS (tonic, high-frequency, burst, closed-loop) and DRG"),
        ModalityGroup("deep_brain", "Deep brain stimulation"),
        ModalityGroup("motor_cortex", "Invasive motor cortex stimulation"),
        ModalityGroup("peripheral", "Peripheral nerve stimulation",
                      description="PNS, occipital, SPG, TENS, sacral, tibial"),
        ModalityGroup("vagal", "Vagus nerve stimulation", description="implanted and transcutaneous"),
        ModalityGroup("convulsive", "Convulsive therapies", description="ECT, MST"),
        ModalityGroup("ultrasound", "Focused ultrasound"),
        ModalityGroup("other", "Other neuromodulation"),
    ]
}

# ---------------------------------------------------------------------------
# Modalities
# ---------------------------------------------------------------------------
_M = Modality
MODALITIES: dict[str, Modality] = {
    m.code: m
    for m in [
        _M("tms", "Transcranial magnetic stimulation", group="noninvasive_cortical",
           synonyms=(r"transcranial magnetic stimulation", r"r?TMS", r"magnetic stimulation of the (?:brain|cortex)",
                     r"repetitive magnetic stimulation", r"rTMS", r"dTMS", r"deep TMS",
                     r"navigated (?:r?TMS|transcranial magnetic stimulation)", r"nTMS"),
           variants=(r"theta[- ]burst(?: stimulation)?", r"iTBS", r"cTBS", r"TBS",
                     r"intermittent theta[- ]burst", r"continuous theta[- ]burst",
                     r"accelerated (?:r?TMS|iTBS)", r"SAINT", r"SNT",
                     r"H[- ]coil", r"deep transcranial magnetic stimulation"),
           devices=(r"NeuroStar", r"Brainsway", r"MagVenture", r"Magstim", r"Nexstim", r"CloudTMS"),
           ambiguous=(r"TMS",)),
        _M("tdcs", "Transcranial direct current stimulation", group="noninvasive_cortical",
           synonyms=(r"transcranial direct[- ]current stimulation", r"tDCS", r"t-DCS", r"HD-tDCS",
                     r"transcranial direct current",
                     r"high[- ]definition tDCS", r"direct current stimulation",
                     r"transcranial (?:electrical|electric) stimulation", r"tES",
                     r"cathodal stimulation", r"anodal stimulation"),
           devices=(r"Soterix", r"Neuroelectrics", r"Starstim", r"Flow Neuroscience", r"NeuroConn")),
        _M("tacs", "Transcranial alternating current stimulation", group="noninvasive_cortical",
           synonyms=(r"transcranial alternating[- ]current stimulation", r"tACS", r"transcranial alternating current")),
        _M("trns", "Transcranial random noise stimulation", group="noninvasive_cortical",
           synonyms=(r"transcranial random noise stimulation", r"tRNS")),
        _M("ces", "Cranial electrotherapy stimulation", group="noninvasive_cortical",
           synonyms=(r"cranial electrotherapy stimulation", r"cranial electrical stimulation",
                     r"CES", r"transcranial (?:pulsed )?electromagnetic", r"electrosleep"),
           devices=(r"Alpha[- ]Stim", r"Fisher Wallace", r"Cefaly"),
           ambiguous=(r"CES",)),
        _M("dbs", "Deep brain stimulation", group="deep_brain", invasive=True,
           synonyms=(r"deep brain stimulation", r"deep[- ]brain stimulator", r"DBS",
                     r"brain pacemaker", r"thalamic stimulation", r"(?:PAG|PVG)[- /]?(?:PVG|PAG)? stimulation",
                     r"subcallosal cingulate stimulation", r"subthalamic (?:nucleus )?stimulation",
                     r"pallidal stimulation", r"hypothalamic stimulation", r"adaptive DBS", r"closed[- ]loop DBS"),
           devices=(r"Activa", r"Percept", r"Vercise", r"Infinity DBS", r"Libra"),
           ambiguous=(r"DBS",)),
        _M("mcs", "Motor cortex stimulation (epidural/subdural)", group="motor_cortex", invasive=True,
           synonyms=(r"motor cortex stimulation", r"epidural (?:motor )?cortical stimulation",
                     r"epidural motor cortex stimulation", r"subdural (?:motor )?cortex stimulation",
                     r"EMCS", r"MCS", r"cortical stimulation implant"),
           ambiguous=(r"MCS",)),
        _M("scs", "Spinal cord stimulation", group="spinal_cord", invasive=True,
           synonyms=(r"spinal cord stimulation", r"spinal cord stimulator", r"SCS", r"dorsal column stimulation",
                     r"epidural (?:spinal )?stimulation", r"neurostimulation of the spinal cord",
                     r"spinal (?:cord )?neuromodulation"),
           variants=(r"high[- ]frequency (?:10 ?kHz )?(?:SCS|spinal cord stimulation)", r"HF10", r"10 ?kHz",
                     r"burst (?:SCS|spinal cord stimulation|stimulation)", r"BurstDR",
                     r"closed[- ]loop (?:SCS|spinal cord stimulation)", r"ECAP", r"tonic (?:SCS|stimulation)",
                     r"differential target multiplexed", r"DTM"),
           devices=(r"Senza", r"Nevro", r"Evoke", r"Saluda", r"Proclaim", r"Precision (?:Spectra|Montage)",
                    r"WaveWriter", r"Intellis", r"RestoreSensor", r"Prodigy", r"Eterna"),
           ambiguous=(r"SCS",)),
        _M("drg", "Dorsal root ganglion stimulation", group="spinal_cord", invasive=True,
           synonyms=(r"dorsal root ganglion stimulation", r"DRG stimulation", r"DRG[- ]S",
                     r"stimulation of the dorsal root ganglion", r"dorsal root ganglion neurostimulation"),
           devices=(r"Axium",)),
        _M("pns", "Peripheral nerve stimulation", group="peripheral", invasive=True,
           synonyms=(r"peripheral nerve stimulation", r"peripheral nerve stimulator", r"PNS",
                     r"occipital nerve stimulation", r"ONS", r"sphenopalatine ganglion stimulation",
                     r"SPG stimulation", r"peripheral nerve field stimulation", r"PNFS",
                     r"subcutaneous (?:peripheral )?(?:nerve|field) stimulation", r"supraorbital (?:nerve )?stimulation",
                     r"percutaneous electrical nerve stimulation", r"PENS",
                     r"genicular nerve stimulation", r"hypoglossal nerve stimulation"),
           devices=(r"SPRINT PNS", r"StimRouter", r"Freedom PNS", r"Pulsante", r"ATI Neurostimulation"),
           ambiguous=(r"PNS", r"ONS")),
        _M("vns", "Vagus nerve stimulation (implanted)", group="vagal", invasive=True,
           synonyms=(r"vagus nerve stimulation", r"vagal nerve stimulation", r"VNS", r"vagus nerve stimulator",
                     r"cervical vagus", r"implanted vagus"),
           devices=(r"LivaNova", r"Cyberonics", r"SenTiva", r"AspireSR"),
           ambiguous=(r"VNS",)),
        _M("tvns", "Transcutaneous vagus nerve stimulation", group="vagal",
           synonyms=(r"transcutaneous (?:auricular )?vag(?:us|al) nerve stimulation", r"t-?VNS", r"ta-?VNS",
                     r"auricular vag(?:us|al) (?:nerve )?stimulation", r"non-?invasive vag(?:us|al) nerve stimulation",
                     r"nVNS", r"auricular (?:electrical )?stimulation", r"percutaneous auricular"),
           devices=(r"gammaCore", r"NEMOS", r"Parasym")),
        _M("tens", "Transcutaneous electrical nerve stimulation", group="peripheral",
           synonyms=(r"transcutaneous electrical nerve stimulation", r"transcutaneous electric nerve stimulation",
                     r"TENS", r"transcutaneous electrical stimulation", r"electroanalgesia",
                     r"interferential current", r"scrambler therapy", r"Calmare", r"electroacupuncture",
                     r"electro-acupuncture", r"transcutaneous electric(?:al)? acupoint stimulation",
                     r"acupoint electrical stimulation"),
           ambiguous=(r"TEAS",),
           devices=(r"Quell", r"Cefaly", r"Nerivio")),
        _M("ect", "Electroconvulsive therapy", group="convulsive",
           synonyms=(r"electroconvulsive therapy", r"electroconvulsive treatment", r"electro-convulsive", r"ECT",
                     r"electroshock")),
        _M("mst", "Magnetic seizure therapy", group="convulsive",
           synonyms=(r"magnetic seizure therapy", r"MST"),
           ambiguous=(r"MST",)),
        _M("fus", "Focused ultrasound", group="ultrasound",
           synonyms=(r"focused ultrasound", r"MRgFUS", r"HIFU", r"high[- ]intensity focused ultrasound",
                     r"transcranial ultrasound", r"low[- ]intensity (?:focused )?ultrasound", r"LIFU", r"TPS",
                     r"transcranial pulse stimulation", r"ultrasound neuromodulation"),
           devices=(r"Exablate", r"ExAblate", r"Insightec", r"InSightec")),
        _M("sacral", "Sacral neuromodulation", group="peripheral", invasive=True,
           synonyms=(r"sacral (?:nerve |root )?(?:neuro)?modulation", r"sacral nerve stimulation", r"SNM", r"SNS",
                     r"sacral neuromodulator"),
           devices=(r"InterStim", r"Axonics"),
           ambiguous=(r"SNS", r"SNM")),
        _M("tibial", "Tibial nerve stimulation", group="peripheral",
           synonyms=(r"(?:percutaneous |transcutaneous )?(?:posterior )?tibial nerve stimulation", r"PTNS", r"TTNS"),
           devices=(r"Urgent PC", r"eCoin", r"BlueWind")),
        _M("other_neuromod", "Other neuromodulation", group="other",
           synonyms=(r"neuromodulation", r"neurostimulation", r"neurostimulator",
                     r"trigeminal nerve stimulation", r"external trigeminal", r"eTNS",
                     r"cerebellar stimulation", r"cortical stimulation", r"photobiomodulation",
                     r"galvanic vestibular stimulation", r"GVS", r"pulsed radiofrequency")),
    ]
}
del _M

# ---------------------------------------------------------------------------
# Indications and subtypes
# ---------------------------------------------------------------------------
INDICATIONS: dict[str, Indication] = {
    i.code: i
    for i in [
        Indication("pain", "Pain", synonyms=(
            r"pain", r"painful", r"analgesi[ac]", r"neuralgia", r"neuropathic", r"fibromyalgia",
            r"migraine", r"headache", r"CRPS", r"complex regional pain", r"sciatica", r"radiculopathy",
            r"failed back surgery", r"FBSS", r"PSPS", r"dysmenorrh[oe]a", r"allodynia", r"hyperalgesia",
            r"nociceptive")),
        Indication("depression", "Depression", synonyms=(
            r"depression", r"depressive", r"major depressive disorder", r"MDD", r"TRD", r"dysthymi[ac]",
            r"bipolar depression", r"melancholi[ac]", r"anhedonia", r"postpartum depression")),
        Indication("both", "Pain and depression"),
        Indication("other", "Other"),
    ]
}

_PS = Subtype
PAIN_SUBTYPES: dict[str, Subtype] = {
    s.code: s
    for s in [
        _PS("neuropathic", "Neuropathic pain", synonyms=(
            r"neuropathic pain", r"neuropathy", r"neuropathic", r"neuralgia", r"trigeminal neuralgia",
            r"post-?herpetic", r"spinal cord injury pain", r"central pain", r"diabetic (?:peripheral )?neuropath",
            r"chemotherapy[- ]induced (?:peripheral )?neuropath", r"radiculopathy", r"sciatica")),
        _PS("fbss", "FBSS / persistent spinal pain syndrome", synonyms=(
            r"failed back surgery", r"FBSS", r"post[- ]laminectomy", r"persistent spinal pain syndrome",
            r"PSPS", r"failed back")),
        _PS("crps", "Complex regional pain syndrome", synonyms=(
            r"complex regional pain syndrome", r"CRPS", r"reflex sympathetic dystrophy", r"causalgia")),
        _PS("fibromyalgia", "Fibromyalgia", synonyms=(r"fibromyalgia",)),
        _PS("migraine", "Migraine / headache", synonyms=(
            r"migraine", r"headache", r"cephalalgia", r"occipital neuralgia", r"tension[- ]type")),
        _PS("cluster_headache", "Cluster headache", synonyms=(
            r"cluster headache", r"trigeminal autonomic cephalalgia", r"SUNCT")),
        _PS("low_back", "Low back pain", synonyms=(r"low[- ]back pain", r"lumbar pain", r"back pain", r"LBP",
                                                    r"lumbago", r"chronic back")),
        _PS("phantom", "Phantom limb pain", synonyms=(r"phantom (?:limb )?pain", r"phantom limb",
                                                      r"post[- ]amputation pain", r"stump pain")),
        _PS("post_stroke", "Central post-stroke pain", synonyms=(
            r"central post[- ]stroke pain", r"post[- ]stroke pain", r"CPSP", r"thalamic pain")),
        _PS("cancer", "Cancer pain", synonyms=(r"cancer pain", r"cancer[- ]related pain", r"malignant pain",
                                               r"pain (?:in|of) (?:patients with )?cancer", r"bone metastas")),
        _PS("acute", "Acute / postoperative pain", synonyms=(
            r"post-?operative pain", r"postsurgical pain", r"acute pain", r"after (?:surgery|operation)",
            r"labou?r pain", r"procedural pain")),
    ]
}

DEPRESSION_SUBTYPES: dict[str, Subtype] = {
    s.code: s
    for s in [
        _PS("mdd", "Major depressive disorder", indication="depression", synonyms=(
            r"major depressi(?:ve|on)", r"MDD", r"unipolar depression", r"depressive disorder")),
        _PS("trd", "Treatment-resistant depression", indication="depression", synonyms=(
            r"treatment[- ]resistant depression", r"TRD", r"refractory depression", r"treatment[- ]refractory",
            r"difficult[- ]to[- ]treat depression")),
        _PS("bipolar", "Bipolar depression", indication="depression", synonyms=(
            r"bipolar (?:I |II )?depression", r"bipolar disorder", r"bipolar")),
        _PS("perinatal", "Perinatal depression", indication="depression", synonyms=(
            r"post-?partum depression", r"perinatal depression", r"postnatal depression", r"antenatal depression",
            r"peripartum depression")),
        _PS("post_stroke_depression", "Post-stroke depression", indication="depression", synonyms=(
            r"post[- ]stroke depression", r"PSD")),
    ]
}
del _PS

# ---------------------------------------------------------------------------
# Targets. Codes are shared with the connectome target catalogue.
# ---------------------------------------------------------------------------
_T = Target
TARGETS: dict[str, Target] = {
    t.code: t
    for t in [
        _T("m1", "Primary motor cortex", synonyms=(
            r"primary motor cortex", r"motor cortex", r"M1", r"precentral gyrus", r"hand knob"),
           modalities=("tms", "tdcs", "mcs")),
        _T("dlpfc_left", "Left dorsolateral prefrontal cortex", hemisphere="left", synonyms=(
            r"left (?:dorso-?lateral prefrontal cortex|DLPFC)", r"L-?DLPFC", r"LDLPFC", r"F3",
            r"left (?:dorso-?lateral )?prefrontal(?: cortex)?"),
           modalities=("tms", "tdcs")),
        _T("dlpfc_right", "Right dorsolateral prefrontal cortex", hemisphere="right", synonyms=(
            r"right (?:dorso-?lateral prefrontal cortex|DLPFC)", r"R-?DLPFC", r"RDLPFC", r"F4",
            r"right (?:dorso-?lateral )?prefrontal(?: cortex)?"),
           modalities=("tms", "tdcs")),
        _T("dlpfc", "Dorsolateral prefrontal cortex (side unspecified or bilateral)", synonyms=(
            r"dorso-?lateral prefrontal(?: cortex)?", r"DLPFC", r"prefrontal cortex"),
           modalities=("tms", "tdcs")),
        _T("dmpfc", "Dorsomedial prefrontal cortex", synonyms=(r"dorso-?medial prefrontal(?: cortex)?", r"DMPFC")),
        _T("ofc", "Orbitofrontal cortex", synonyms=(r"orbito-?frontal(?: cortex)?", r"OFC")),
        _T("insula", "Posterior insula / operculum", synonyms=(
            r"(?:posterior )?insula(?:r cortex)?", r"operculo-?insular", r"parietal operculum")),
        _T("s1", "Primary somatosensory cortex", synonyms=(r"primary somatosensory cortex", r"S1",
                                                             r"somatosensory cortex", r"postcentral gyrus")),
        _T("acc", "Dorsal anterior / mid cingulate cortex", synonyms=(
            r"(?:dorsal )?anterior cingulate(?: cortex)?", r"dACC", r"ACC", r"mid-?cingulate", r"cingulotomy")),
        _T("cerebellum", "Cerebellum", synonyms=(r"cerebell(?:um|ar)",)),
        _T("occipital_cortex", "Occipital / visual cortex", synonyms=(r"occipital cortex", r"visual cortex", r"V1")),
        _T("scc", "Subcallosal / subgenual cingulate (Cg25)", depth="deep", synonyms=(
            r"subcallosal cingulate", r"subgenual cingulate", r"sgACC", r"SCC", r"Cg ?25",
            r"Brodmann area 25", r"subgenual anterior cingulate"),
           modalities=("dbs",)),
        _T("pag_pvg", "Periaqueductal / periventricular grey", depth="deep", hemisphere="midline", synonyms=(
            r"periaqueductal gr[ae]y", r"periventricular gr[ae]y", r"PAG", r"PVG", r"PAG/PVG", r"PVG/PAG"),
           modalities=("dbs",)),
        _T("thalamus_sensory", "Sensory thalamus (VPL/VPM)", depth="deep", synonyms=(
            r"ventral posterolateral", r"ventral posteromedial", r"VPL", r"VPM", r"VPL/VPM",
            r"sensory thalamus", r"ventrocaudal", r"Vc nucleus"),
           modalities=("dbs",)),
        _T("thalamus_cm", "Centromedian-parafascicular thalamus", depth="deep", synonyms=(
            r"centromedian", r"centrom[eé]dian[- ]parafascicular", r"CM-?Pf", r"CM thalamus"),
           modalities=("dbs",)),
        _T("thalamus", "Thalamus (nucleus unspecified)", depth="deep", synonyms=(r"thalam(?:us|ic)",)),
        _T("vc_vs", "Ventral capsule / ventral striatum", depth="deep", synonyms=(
            r"ventral capsule", r"ventral striatum", r"VC/VS", r"VC-VS", r"anterior limb of the internal capsule",
            r"ALIC"), modalities=("dbs",)),
        _T("nacc", "Nucleus accumbens", depth="deep", synonyms=(r"nucleus accumbens", r"NAcc", r"accumbens")),
        _T("mfb", "Medial forebrain bundle", depth="deep", synonyms=(r"medial forebrain bundle", r"slMFB", r"MFB")),
        _T("habenula", "Lateral habenula", depth="deep", synonyms=(r"(?:lateral )?habenula", r"LHb")),
        _T("itp", "Inferior thalamic peduncle", depth="deep", synonyms=(r"inferior thalamic peduncle", r"ITP")),
        _T("bnst", "Bed nucleus of the stria terminalis", depth="deep", synonyms=(
            r"bed nucleus of (?:the )?stria terminalis", r"BNST")),
        _T("hypothalamus", "Posterior hypothalamus", depth="deep", synonyms=(
            r"(?:posterior )?hypothalam(?:us|ic)",), modalities=("dbs",)),
        _T("stn", "Subthalamic nucleus", depth="deep", synonyms=(r"subthalamic nucleus", r"STN")),
        _T("parabrachial", "Parabrachial nucleus", depth="deep", synonyms=(
            r"parabrachial(?: nucleus| nuclei| complex)?", r"PBN")),
        _T("cuneiform", "Nucleus cuneiformis", depth="deep", synonyms=(
            r"(?:nucleus )?cuneiform(?:is)?(?: nucleus)?",)),
        _T("raphe", "Raphe nuclei (dorsal raphe, raphe magnus)", depth="deep", hemisphere="midline", synonyms=(
            r"(?:dorsal |median )?raphe(?: nucle(?:us|i))?", r"(?:nucleus )?raphe magnus", r"RMg")),
        _T("gpi", "Globus pallidus internus", depth="deep", synonyms=(r"globus pallidus", r"GPi")),
        _T("amygdala", "Amygdala", depth="deep", synonyms=(r"amygdala",)),
        _T("spinal_cord", "Spinal cord (dorsal columns)", depth="spinal", synonyms=(
            r"dorsal column", r"spinal cord", r"epidural space")),
        _T("drg", "Dorsal root ganglion", depth="spinal", synonyms=(r"dorsal root ganglion", r"DRG")),
        _T("occipital_nerve", "Occipital nerve", depth="peripheral", synonyms=(
            r"(?:greater )?occipital nerve", r"ONS")),
        _T("spg", "Sphenopalatine ganglion", depth="peripheral", synonyms=(
            r"sphenopalatine ganglion", r"SPG", r"pterygopalatine ganglion")),
        _T("vagus", "Vagus nerve", depth="peripheral", synonyms=(
            r"vagus nerve", r"vagal nerve", r"auricular branch of the vagus", r"cymba conchae")),
        _T("peripheral_nerve", "Peripheral nerve (other)", depth="peripheral", synonyms=(
            r"peripheral nerve", r"sciatic nerve", r"femoral nerve", r"median nerve", r"genicular nerve",
            r"tibial nerve", r"supraorbital nerve", r"trigeminal nerve")),
        _T("sacral_nerve", "Sacral nerve", depth="peripheral", synonyms=(r"sacral nerve", r"S3 (?:nerve|foramen)")),
    ]
}
del _T


def modality(code: str) -> Modality:
    """Return the modality for ``code``; raise ``KeyError`` naming the valid codes."""
    try:
        return MODALITIES[code]
    except KeyError:
        raise KeyError(f"unknown modality {code!r}; valid codes: {', '.join(MODALITIES)}") from None


def target(code: str) -> Target:
    try:
        return TARGETS[code]
    except KeyError:
        raise KeyError(f"unknown target {code!r}; valid codes: {', '.join(TARGETS)}") from None


def group_of(code: str) -> str:
    """Modality group code of a modality code."""
    return modality(code).group


def is_invasive(codes) -> bool:
    """True if any of the modality codes needs surgery or an implanted/percutaneous lead."""
    return any(modality(c).invasive for c in codes)


#: labels that follow from the modality codes alone (see :func:`labels_from_modalities`)
DERIVED_FROM_MODALITIES = ("neuromod", "modality_group", "invasive")


def labels_from_modalities(codes) -> dict:
    """The labels that follow from a trial's modality codes: ``neuromod`` (any modality),
    ``modality_group`` (the codes' groups, in vocabulary order) and ``invasive`` (None when no
    modality). The classifier derives them with this function, and so does a reviewer's
    correction of ``modalities`` (:mod:`neuromodmap.trials.overrides`)."""
    codes = list(codes)
    groups = sorted({group_of(c) for c in codes}, key=list(MODALITY_GROUPS).index)
    return {"neuromod": bool(codes), "modality_group": groups, "invasive": is_invasive(codes) if codes else None}


@cache
def compile_synonyms(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive, word-bounded alternation of synonym patterns."""
    # longest first so "deep TMS" wins over "TMS"
    alts = sorted(set(patterns), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alts) + r")(?![\w])", re.IGNORECASE)


def _normalise(value: str, table: dict[str, Term]) -> str | None:
    value = value.strip()
    if not value:
        return None
    low = value.lower().replace("-", "_").replace(" ", "_")
    if low in table:
        return low
    for term in table.values():
        if low == term.label.lower().replace("-", "_").replace(" ", "_"):
            return term.code
        if compile_synonyms(tuple(term.patterns)).fullmatch(value.strip()):
            return term.code
    return None


def normalise_modality(value: str) -> str | None:
    """Map a free-text modality name ("rTMS", "spinal cord stimulation", "SCS") to its code.

    Returns None when nothing matches. Longer, unambiguous names are tried before
    abbreviations, so "deep TMS" maps to ``tms`` and "tVNS" to ``tvns``.
    """
    return _normalise(value, MODALITIES)


def normalise_target(value: str) -> str | None:
    """Map a free-text target name ("left DLPFC", "PAG/PVG", "Cg25") to its code."""
    return _normalise(value, TARGETS)
