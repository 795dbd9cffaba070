"""NYU debates imported before the importer named their protocol (human/AI debate/consultancy)
get the name from the setting recorded in their provenance, so every figure can split them."""
from django.db import migrations

SOURCE = "nyu-debate-2023"


def name_protocols(apps, schema_editor):
    Debate = apps.get_model("debates", "Debate")
    unnamed = Debate.objects.filter(source=SOURCE, protocol_name="").only("id", "provenance")
    for debate in unnamed.iterator():
        setting = (debate.provenance or {}).get("setting") or {}
        if setting.get("debaters") and setting.get("format"):
            kind = "human" if setting["debaters"] == "human" else "AI"
            Debate.objects.filter(pk=debate.pk).update(protocol_name=f"{kind} {setting['format']}")


class Migration(migrations.Migration):

    dependencies = [
        ("debates", "0003_debate_protocol_name_experiment_experimentversion_and_more"),
        ("judging", "0004_offline_assignments"),
    ]

    operations = [migrations.RunPython(name_protocols, migrations.RunPython.noop)]
