# A registry's learned plain-HTTP route (issue 16): set by Test connection and syncs.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registries", "0004_registry_listing"),
    ]

    operations = [
        migrations.AddField(
            model_name="registry",
            name="plain_http",
            field=models.BooleanField(default=False, editable=False, verbose_name="Speaks plain HTTP"),
        ),
    ]
