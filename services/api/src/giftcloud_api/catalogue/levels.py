"""The information model as the catalogue keeps it: which attributes belong to a study
(once per study), to a series, or to each instance; which it computes."""

from typing import Literal

Level = Literal["study", "series", "instance"]
LEVELS: tuple[Level, ...] = ("study", "series", "instance")

#: the Patient and Study modules' attributes: kept once per study, matched at study level
STUDY_TAGS = frozenset(
    {
        "00080005",  # SpecificCharacterSet (at every level; the study's is returned)
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080090",  # ReferringPhysicianName
        "00080063",  # AnatomicRegionsInStudyCodeSequence
        "00080201",  # TimezoneOffsetFromUTC
        "00081030",  # StudyDescription
        "00081060",  # NameOfPhysiciansReadingStudy
        "00081080",  # AdmittingDiagnosesDescription
        "00081110",  # ReferencedStudySequence
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00100021",  # IssuerOfPatientID
        "00100030",  # PatientBirthDate
        "00100032",  # PatientBirthTime
        "00100040",  # PatientSex
        "00101010",  # PatientAge
        "00101020",  # PatientSize
        "00101030",  # PatientWeight
        "00102160",  # EthnicGroup
        "00102180",  # Occupation
        "001021B0",  # AdditionalPatientHistory
        "00104000",  # PatientComments
        "00120062",  # PatientIdentityRemoved
        "00120063",  # DeidentificationMethod
        "0020000D",  # StudyInstanceUID
        "00200010",  # StudyID
        "00321032",  # RequestingPhysician
        "00321060",  # RequestedProcedureDescription
    }
)

#: the General Series and Equipment modules' attributes: kept once per series
SERIES_TAGS = frozenset(
    {
        "00080021",  # SeriesDate
        "00080031",  # SeriesTime
        "00080060",  # Modality
        "00080070",  # Manufacturer
        "00080080",  # InstitutionName
        "00081010",  # StationName
        "0008103E",  # SeriesDescription
        "00081040",  # InstitutionalDepartmentName
        "00081050",  # PerformingPhysicianName
        "00081070",  # OperatorsName
        "00081090",  # ManufacturerModelName
        "00180015",  # BodyPartExamined
        "00181000",  # DeviceSerialNumber
        "00181020",  # SoftwareVersions
        "00181030",  # ProtocolName
        "00185100",  # PatientPosition
        "0020000E",  # SeriesInstanceUID
        "00200011",  # SeriesNumber
        "00200052",  # FrameOfReferenceUID
        "00200060",  # Laterality
        "00400244",  # PerformedProcedureStepStartDate
        "00400245",  # PerformedProcedureStepStartTime
        "00400254",  # PerformedProcedureStepDescription
        "00400275",  # RequestAttributesSequence
    }
)

#: attributes the catalogue computes rather than reads from a file
MODALITIES_IN_STUDY = "00080061"
COMPUTED: dict[Level, frozenset[str]] = {
    "study": frozenset({"00080056", MODALITIES_IN_STUDY, "00081190", "00201206", "00201208"}),
    "series": frozenset({"00080056", "00081190", "00201209"}),
    "instance": frozenset({"00080056", "00081190"}),
}
#: of the computed ones, those that can be matched (the rest are counts and URLs)
COMPUTED_MATCHABLE = frozenset({MODALITIES_IN_STUDY})
